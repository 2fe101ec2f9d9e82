"""API authentication: `Authorization: Bearer mai_<prefix>_<secret>`, one key per integration.

A key belongs to one workspace and carries scopes; every query an API view makes is filtered by
`request.auth.workspace`, so another workspace's objects are simply not found (404).
"""

import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from crm.models import ApiKey


class ApiKeyUser:
    """What `request.user` is for a request made with an API key."""

    is_authenticated = True
    is_staff = False
    is_superuser = False
    is_active = True

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.pk = None
        self.username = f"api-key:{key.prefix}"

    def __str__(self) -> str:
        return f"API key {self.key.name} ({self.key.prefix})"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword:
            return None
        token = token.strip()
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "mai":
            raise exceptions.AuthenticationFailed("malformed API key")
        key = ApiKey.objects.select_related("workspace").filter(prefix=parts[1]).first()
        if key is None or not hmac.compare_digest(key.key_hash, ApiKey.hash(parts[2])):
            raise exceptions.AuthenticationFailed("unknown API key")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("this API key was revoked")
        now = timezone.now()
        # Recorded at most once a minute: a write per request would double the load.
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasScope(permissions.BasePermission):
    """Requires the view's `read_scope` for safe methods and `write_scope` for the rest."""

    message = "this API key lacks the scope this endpoint needs"

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        needed = view.read_scope if request.method in permissions.SAFE_METHODS else view.write_scope
        if needed not in key.scopes:
            self.message = f"this API key lacks the scope {needed!r}"
            return False
        return True


class ApiKeyThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (rate: API_RATE_LIMIT, e.g. 6000/min), counted in the shared cache."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return f"throttle:key:{request.auth.prefix}"
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
