"""One Redis client per process for what web processes and workers share: counters, limits and
cached answers. Built on first use and again when REDIS_URL changes (tests point it elsewhere)."""

import redis
from django.conf import settings

_client: redis.Redis | None = None
_url = ""


def client() -> redis.Redis:
    global _client, _url
    if _client is None or _url != settings.REDIS_URL:
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
        _url = settings.REDIS_URL
    return _client
