from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme

from crm import validation
from crm.admin.scope import SESSION_KEY, user_workspaces, visible_workspaces
from crm.models import AuditEntry, Workspace
from workers.admin_access import STAFF_ONLY, ModelPermissionAdmin


@admin.register(Workspace)
class WorkspaceAdmin(ModelPermissionAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        return user_workspaces(request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        # Another workspace's staff are not a member's to see: the choices are the people of
        # the user's own workspaces (a superuser adds someone new to a first workspace).
        if db_field.name == "members":
            kwargs["queryset"] = colleagues(request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def get_urls(self):
        switch = path(
            # Every staff member picks among their own workspaces; it changes only the session.
            "switch/",
            self.guarded_view(self.switch_view, STAFF_ONLY),
            name="crm_workspace_switch",
        )
        return [switch, *super().get_urls()]

    def switch_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """POST workspace=<id> (or empty for all of mine) from the header's switcher."""
        target = request.POST.get("next") or "/admin/"
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = "/admin/"
        if request.method == "POST":
            pk = request.POST.get("workspace")
            if not pk:
                request.session.pop(SESSION_KEY, None)
            elif not validation.is_identifier(pk):  # "abc", "²": the query would fail
                messages.error(request, "That is not a workspace.")
            elif user_workspaces(request).filter(pk=validation.identifier(pk)).exists():
                request.session[SESSION_KEY] = validation.identifier(pk)
            else:
                messages.error(request, "You are not a member of that workspace.")
        return HttpResponseRedirect(target)


def colleagues(request: HttpRequest):
    """The users a staff member may see: everyone for a superuser, else the members of their
    workspaces (themselves included)."""
    users = get_user_model().objects.all()
    if request.user.is_superuser:
        return users
    mine = users.filter(workspaces__in=user_workspaces(request)).values("pk")
    return users.filter(Q(pk__in=mine) | Q(pk=request.user.pk))


# Django's user admin lists every account to whoever may view users: the staff of every
# workspace, by name and address. Here, a member's colleagues only.
admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class UserAdmin(auth_admin.UserAdmin):
    def get_queryset(self, request):
        return super().get_queryset(request).filter(pk__in=colleagues(request).values("pk"))


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor", "customer_id", "workspace"]
    list_filter = ["action"]
    readonly_fields = ["workspace", "action", "actor", "customer_id", "details", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(workspace__in=visible_workspaces(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit log is evidence: nobody edits it
