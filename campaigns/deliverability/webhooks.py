"""The ESP tracking webhooks under /webhooks/anymail/<esp>/tracking/: anymail's own view for
each ESP it supports, answering 404 while ANYMAIL's WEBHOOK_SECRET is unset (anymail would
accept anyone's posts without it) and 400 where recording the event fails, so the ESP retries
(anymail's default is a 500, which some ESPs treat as final)."""

import functools
import logging

from anymail import urls as anymail_urls
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponse
from django.urls import path

logger = logging.getLogger(__name__)


def _answering_400(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
            raise Http404("ESP webhooks are off (no ANYMAIL_WEBHOOK_SECRET)")
        try:
            return view(request, *args, **kwargs)
        except SuspiciousOperation:
            raise  # a failed auth or signature check: Django's 400 as anymail means it
        except Exception:
            logger.exception("ESP webhook %s: the event could not be recorded", request.path)
            return HttpResponse("could not record the event; post it again", status=400)

    return wrapped


def urlpatterns() -> list:
    return [
        path(str(p.pattern), _answering_400(p.callback), name=p.name)
        for p in anymail_urls.urlpatterns
        if str(p.pattern).endswith("/tracking/")
    ]
