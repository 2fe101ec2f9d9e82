"""GET /healthz: database, broker and worker reachability as JSON, for load balancers.

503 when the database or the broker is unreachable (this node cannot serve); 200 with status
"degraded" when no worker answers (pages work, background jobs wait). The public gets only
{"status": ...} and the code; which checks failed, their errors (host names, ports), timings
and worker names go to logged-in staff, or to a monitor that sends the X-Healthz-Token header
matching the HEALTHZ_TOKEN setting.
"""

import hmac
import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from workers.celery import app


def _timed(check) -> dict:
    start = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # any failure is the answer here, not an error of this view
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result = {"ok": True, "ms": round(1000 * (time.perf_counter() - start), 1)}
    result.update(detail or {})
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _broker() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _workers() -> dict:
    # limit=1 returns as soon as one worker answers instead of waiting out the timeout.
    replies = app.control.ping(timeout=1.0, limit=1)
    if not replies:
        raise RuntimeError("no worker answered within 1 s")
    return {"answered": [name for reply in replies for name in reply]}


def may_see_details(request: HttpRequest) -> bool:
    """Staff signed in to the admin, or the monitoring token (when one is configured)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = settings.HEALTHZ_TOKEN
    given = request.headers.get("X-Healthz-Token", "")
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _timed(_database), "broker": _timed(_broker)}
    checks["workers"] = _timed(_workers) if checks["broker"]["ok"] else {"ok": False}
    serving = checks["database"]["ok"] and checks["broker"]["ok"]
    status = "ok" if serving and checks["workers"]["ok"] else "degraded" if serving else "down"
    body = {"status": status, **checks} if may_see_details(request) else {"status": status}
    return JsonResponse(body, status=200 if serving else 503)
