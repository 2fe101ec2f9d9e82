"""The Celery app. Workers start with `celery -A workers worker -Q default,sends,ml,gpu`, and the
chat's with `celery -A workers worker -Q chat` beside them."""

import os

from celery import Celery
from celery.signals import beat_init, celeryd_after_setup

from marketing_ai import mode

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")

app = Celery("marketing_ai")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app keeps its tasks beside its services; the apps also import them when they load.
app.autodiscover_tasks(
    ["crm", "crm.support", "campaigns", "campaigns.journeys", "workers"], related_name="tasks"
)


@celeryd_after_setup.connect
def _worker_says_its_mode(sender, **kwargs) -> None:
    mode.log_banner(f"worker {sender}")


@beat_init.connect
def _beat_says_its_mode(sender, **kwargs) -> None:
    mode.log_banner("beat")
