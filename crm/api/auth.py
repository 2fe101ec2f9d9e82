"""API authentication: `Authorization: Bearer mai_<prefix>_<secret>`, one key per integration.

A key belongs to one workspace and carries scopes; every query an API view makes is filtered by
`request.auth.workspace`, so another workspace's objects are simply not found (404).
"""

import hmac
import logging
import re
import threading
import time
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from crm.models import ApiKey
from marketing_ai import kv

log = logging.getLogger(__name__)
PREFIX = re.compile(r"[0-9a-f]{1,16}")  # secrets.token_hex, as long as ApiKey.prefix allows


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


class _KeyCache:
    """Verified keys for a few seconds per process: a busy integration would otherwise look its
    key up on every request. A revoked key stops working within CACHE_SECONDS."""

    CACHE_SECONDS = 10.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> ApiKey | None:
        entry = self._entries.get(token)
        if entry is None or time.monotonic() - entry[0] > self.CACHE_SECONDS:
            return None
        return entry[1]

    def put(self, token: str, key: ApiKey) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token] = (time.monotonic(), key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache = _KeyCache()


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
        cached = key_cache.get(token)
        if cached is not None:
            return ApiKeyUser(cached), cached
        parts = token.split("_", 2)
        # The prefix is looked up: only what api_key_create writes (hex) may reach the query
        # (a NUL in it made PostgreSQL refuse the lookup: 500).
        if len(parts) != 3 or parts[0] != "mai" or not PREFIX.fullmatch(parts[1]):
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
        key_cache.put(token, key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasScope(permissions.BasePermission):
    """Requires the view's `read_scope` for safe methods and `write_scope` for the rest, plus
    any the view's `extra_scopes` names for the method (a customer's DELETE is an erasure)."""

    message = "this API key lacks the scope this endpoint needs"

    def has_permission(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        needed = view.read_scope if request.method in permissions.SAFE_METHODS else view.write_scope
        extra = getattr(view, "extra_scopes", {}).get(request.method, ())
        for scope in (needed, *extra):
            if scope not in key.scopes:
                self.message = f"this API key lacks the scope {scope!r}"
                return False
        return True


class ApiKeyThrottle(throttling.BaseThrottle):
    """Requests per API key per minute (API_RATE_LIMIT, e.g. "6000/min"), counted in Redis.

    A fixed one-minute window kept as one counter (INCR + EXPIRE in a single round trip), so
    every web process shares the count and the cost does not grow with the rate, unlike DRF's
    sliding window that rewrites a list of every recent request's time.

    While Redis is unreachable the limit fails open: an outage of the counter must not take the
    API down with it. The process says so once per OUTAGE_LOG_SECONDS, not once per request.
    """

    OUTAGE_LOG_SECONDS = 60.0
    _outage_logged_at = -OUTAGE_LOG_SECONDS

    def __init__(self) -> None:
        self.limit, self.period = _parse_rate(
            settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"]
        )
        self.retry_after = 0.0

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        now = time.time()
        window = int(now // self.period)
        key = f"mai:throttle:{request.auth.prefix}:{window}"
        if not kv.available():  # failed a moment ago: not worth another timeout
            return True
        try:
            pipe = kv.client().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.period + 5)
            count = pipe.execute()[0]
        except redis.RedisError as exc:
            kv.failed()
            self._outage(exc)
            return True
        if count <= self.limit:
            return True
        self.retry_after = (window + 1) * self.period - now
        return False

    def wait(self) -> float:
        return self.retry_after

    @classmethod
    def _outage(cls, exc: Exception) -> None:
        now = time.monotonic()
        if now - cls._outage_logged_at >= cls.OUTAGE_LOG_SECONDS:
            cls._outage_logged_at = now
            log.warning("API rate limit not enforced: Redis is unreachable (%s)", exc)


def _parse_rate(rate: str) -> tuple[int, int]:
    count, _, unit = rate.partition("/")
    seconds = {
        "s": 1,
        "sec": 1,
        "m": 60,
        "min": 60,
        "h": 3600,
        "hour": 3600,
        "d": 86400,
        "day": 86400,
    }[unit]
    return int(count), seconds
