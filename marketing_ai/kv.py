"""One Redis client per process for what web processes and workers share: counters, limits and
cached answers. Built on first use and again when REDIS_URL changes (tests point it elsewhere).

Callers that can do without Redis (the API rate limit, cached answers) ask `available()` first
and report a failure with `failed()`: after one, the process leaves Redis alone for
SKIP_SECONDS, so a Redis that hangs costs one request the socket timeout, not every request."""

import time

import redis
from django.conf import settings

SKIP_SECONDS = 5.0

_client: redis.Redis | None = None
_url = ""
_failed: tuple[str, float] = ("", float("-inf"))  # the URL that failed, and when


def client() -> redis.Redis:
    global _client, _url
    if _client is None or _url != settings.REDIS_URL:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        _url = settings.REDIS_URL
    return _client


def available() -> bool:
    """False for SKIP_SECONDS after a failure was reported (then Redis is tried again)."""
    url, at = _failed
    return url != settings.REDIS_URL or time.monotonic() - at >= SKIP_SECONDS


def failed() -> None:
    """Reports that Redis did not answer (a RedisError)."""
    global _failed
    _failed = (settings.REDIS_URL, time.monotonic())
