"""Admin scoping: staff see the workspaces they are members of (superusers see all), narrowed
to the one they picked in the header's workspace switcher.

Rows are not the only way a name shows: a list filter on a related field lists every row of the
related model, a choice box every row it could point to, and a raw id box names whatever row
its id is. WorkspaceScopedAdmin (and ScopedInline, ScopedListFilters) narrow all three to the
user's workspaces, for any related model that belongs to one.
"""

from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.http import HttpRequest

from crm.admin.lists import ScaledLists
from crm.models import Workspace
from crm.selectors.segment_choices import distinct_values
from workers.admin_access import ModelPermissionAdmin

SESSION_KEY = "crm_workspace"


def user_workspaces(request: HttpRequest):
    if request.user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(members=request.user)


def current_workspace(request: HttpRequest) -> Workspace | None:
    """The workspace chosen in the switcher, if the user may still see it."""
    pk = request.session.get(SESSION_KEY)
    if pk is None:
        return None
    return user_workspaces(request).filter(pk=pk).first()


def visible_workspaces(request: HttpRequest):
    current = current_workspace(request)
    workspaces = user_workspaces(request)
    return workspaces.filter(pk=current.pk) if current else workspaces


def visible_workspace_ids(request: HttpRequest) -> list[int]:
    """The ids of visible_workspaces, looked up once per request. Lists filter by the ids
    themselves: `workspace_id IN (7)` lets PostgreSQL's planner use its statistics for
    workspace 7 (its row estimate is the list's estimated count), where a subquery it cannot
    see into is planned for an average workspace."""
    ids = getattr(request, "_visible_workspace_ids", None)
    if ids is None:
        ids = list(visible_workspaces(request).order_by("pk").values_list("pk", flat=True))
        request._visible_workspace_ids = ids
    return ids


def _workspace_field(model) -> bool:
    try:
        field = model._meta.get_field("workspace")
    except FieldDoesNotExist:
        return False
    return field.is_relation and field.related_model is Workspace


def path_to_workspace(model) -> str | None:
    """The lookup from a row of `model` to its workspace ("pk" for a workspace, "workspace",
    or one step up such as a variant's "campaign__workspace"), or None for a model that
    belongs to no workspace (users, the beat schedule)."""
    if model is Workspace:
        return "pk"
    if _workspace_field(model):
        return "workspace"
    for field in model._meta.concrete_fields:
        if field.many_to_one and _workspace_field(field.related_model):
            return f"{field.name}__workspace"
    return None


def scoped(queryset, request: HttpRequest):
    """`queryset` narrowed to the user's (current) workspaces, or None where its model belongs
    to no workspace."""
    path = path_to_workspace(queryset.model)
    if path is None:
        return None
    return queryset.filter(**{f"{path}__in": visible_workspaces(request)})


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter on a related field listing the related rows of the user's workspaces; for
    a related model outside any workspace, those the admin's own rows point to."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        rows = scoped(related._default_manager.all(), request)
        if rows is None:
            pointed_to = model_admin.get_queryset(request).order_by()
            rows = related._default_manager.filter(
                pk__in=pointed_to.values(f"{self.field_path}__pk")
            )
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            rows = rows.order_by(*ordering)
        return [(row.pk, str(row)) for row in rows]


def scoped_list_filter(model, entry):
    """`entry` of a list_filter, with Django's related-field filter (which lists every row of
    the related model) replaced by ScopedRelatedFilter."""
    if isinstance(entry, str):
        name, kind = entry, None
    elif isinstance(entry, (tuple, list)) and isinstance(entry[0], str):
        name, kind = entry
    else:
        return entry  # a SimpleListFilter computes its own lookups
    try:
        field = get_fields_from_path(model, name)[-1]
    except (FieldDoesNotExist, NotRelationField):
        return entry
    if field.is_relation and kind in (None, admin.RelatedFieldListFilter):
        return (name, ScopedRelatedFilter)
    return entry


class ScopedListFilters:
    """For any ModelAdmin: its list filters on related fields list the user's workspaces'
    rows only."""

    def get_list_filter(self, request):
        return [scoped_list_filter(self.model, f) for f in super().get_list_filter(request)]


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """A filter offering each value a column holds, found without reading the table: Django's
    (SELECT DISTINCT over every row) reads ten million events to list seven event types. This
    one walks the (workspace, column) index, one probe per value, for each visible workspace
    (crm.selectors.segment_choices.distinct_values). Only for a column of the admin's own model
    with such an index; at most MAX_VALUES values are offered."""

    MAX_VALUES = 100

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        if model_admin.workspace_path != "workspace" or "__" in field_path:
            raise ImproperlyConfigured(
                f"{field_path}: IndexedValuesFilter needs a workspace column"
            )
        values: set = set()
        for pk in visible_workspace_ids(request):
            values.update(distinct_values(model, field.name, pk, self.MAX_VALUES))
        self.lookup_choices = sorted(values)[: self.MAX_VALUES]


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """The raw id box, naming the row whose id it holds only where the user may see that row
    (Django's names any row by its id: typed with another workspace's id, the form sent back
    with its error would show that row's name)."""

    def __init__(self, rel, admin_site, *, queryset, **kwargs):
        super().__init__(rel, admin_site, **kwargs)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            visible = self.queryset.filter(**{key: value}).exists()
        except (ValueError, TypeError, ValidationError):
            visible = False
        return super().label_and_url_for_value(value) if visible else ("", "")


class ScopedChoices:
    """For a ModelAdmin or an inline: the rows a foreign key or many-to-many field may choose
    are the user's workspaces' (a workspace field offers all of the user's workspaces, the
    current one first chosen)."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if related is Workspace:
            kwargs["queryset"] = user_workspaces(request)
            current = current_workspace(request)
            if current is not None:
                kwargs["initial"] = current.pk
        elif "queryset" not in kwargs:
            rows = scoped(related._default_manager.all(), request)
            if rows is not None:
                kwargs["queryset"] = rows
                if db_field.name in self.raw_id_fields and "widget" not in kwargs:
                    kwargs["widget"] = ScopedRawIdWidget(
                        db_field.remote_field,
                        self.admin_site,
                        queryset=rows,
                        using=kwargs.get("using"),
                    )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            rows = scoped(db_field.related_model._default_manager.all(), request)
            if rows is not None:
                kwargs["queryset"] = rows
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ScopedInline(ScopedChoices, admin.TabularInline):
    """A tabular inline whose choices are the user's workspaces' rows."""


class WorkspaceScopedAdmin(ScaledLists, ScopedListFilters, ScopedChoices, ModelPermissionAdmin):
    """Rows of the user's (current) workspaces only; new rows go to the current workspace;
    filters and choices list the user's workspaces' rows; lists are counted and paged as
    ScaledLists does."""

    workspace_path = "workspace"  # how the model reaches its workspace

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.filter(**{f"{self.workspace_path}__in": visible_workspace_ids(request)})
