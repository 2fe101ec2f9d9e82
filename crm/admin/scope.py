"""Admin scoping: staff see the workspaces they are members of (superusers see all), narrowed
to the one they picked in the header's workspace switcher."""

from django.http import HttpRequest

from crm.models import Workspace
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


class WorkspaceScopedAdmin(ModelPermissionAdmin):
    """Rows of the user's (current) workspaces only; new rows go to the current workspace."""

    workspace_path = "workspace"  # how the model reaches its workspace

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.filter(**{f"{self.workspace_path}__in": visible_workspaces(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Workspace:
            kwargs["queryset"] = user_workspaces(request)
            current = current_workspace(request)
            if current is not None:
                kwargs["initial"] = current.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
