"""Permission checks for the admin's own pages and actions.

Django checks the model permissions for its standard pages (change list, change form, delete)
but not for the pages a ModelAdmin adds in get_urls(): `admin_site.admin_view` asks for staff
status only, so a staff user allowed only to view campaigns could launch or cancel one. Every
extra page goes through `ModelPermissionAdmin.guarded_view`, which names the permission it
needs; every action declares `allowed_permissions`. tests/workers/test_admin_access.py walks
every registered admin's URLs and actions, so one added without a check fails there.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

# Marks a page that every staff member may use (e.g. the workspace switcher): an explicit
# choice, so that forgetting a permission is not the same as granting the page to all.
STAFF_ONLY = "staff"


def model_permission(opts, action: str) -> str:
    """'<app>.<action>_<model>' for the model whose options are `opts` (action: view, add,
    change, delete)."""
    return f"{opts.app_label}.{get_permission_codename(action, opts)}"


def user_has(request: HttpRequest, opts, action: str) -> bool:
    """The user's own model permission, whatever the ModelAdmin's has_*_permission says (some
    answer False for everyone because their rows are never edited by hand)."""
    return request.user.has_perm(model_permission(opts, action))


class ModelPermissionAdmin(admin.ModelAdmin):
    """A ModelAdmin whose extra pages each need a model permission, not only staff status."""

    def guarded_view(self, view: Callable, action: str, *, write_action: str | None = None):
        """`view` behind the admin login, answering 403 unless the user holds the model's
        `action` permission (view, add, change, delete), or is staff where `action` is
        STAFF_ONLY. With `write_action`, a POST needs that permission as well (a page that shows
        for `view` and changes something on submit)."""

        @wraps(view)
        def checked(request: HttpRequest, *args, **kwargs):
            if action != STAFF_ONLY and not user_has(request, self.opts, action):
                raise PermissionDenied
            if write_action and request.method == "POST":
                if not user_has(request, self.opts, write_action):
                    raise PermissionDenied
            return view(request, *args, **kwargs)

        checked.admin_permission = (action, write_action)
        return self.admin_site.admin_view(checked)
