"""WSGI entry point (gunicorn marketing_ai.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
application = get_wsgi_application()


def _settle() -> None:
    """Imports every view now and moves what start-up built out of the collector's sight.

    Django, DRF and the URL conf leave ~130,000 long-lived objects; each full collection walked
    them all, a pause that landed on whichever request was running and made the latency's
    tail. Frozen objects are never collected, and start-up objects live as long
    as the process anyway.
    """
    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()
    gc.freeze()


_settle()

from marketing_ai import mode  # noqa: E402 - after Django is set up, which configures logging

mode.log_banner("web")
