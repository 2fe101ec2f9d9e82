"""The admin header's workspace switcher needs the user's workspaces on every admin page."""

from crm.admin.scope import current_workspace, user_workspaces


def workspaces(request) -> dict:
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated and user.is_staff and request.path.startswith("/admin")):
        return {}
    return {
        "user_workspaces": list(user_workspaces(request).only("pk", "name")),
        "current_workspace": current_workspace(request),
    }
