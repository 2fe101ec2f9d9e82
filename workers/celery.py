"""The Celery app. Workers start with `celery -A workers worker -Q default,sends,ml,gpu`, and the
chat's with `celery -A workers worker -Q chat` beside them."""

import logging
import os
from numbers import Real

from celery import Celery
from celery.signals import after_setup_logger, beat_init, celeryd_after_setup, celeryd_init
from django.conf import settings

from marketing_ai import mode

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")

# A worker's stdout and stderr are Celery's logger at WARNING: a progress bar drawn there (tqdm
# in transformers' model loading and GGUF conversion, statsforecast, implicit) came out as one
# warning per redraw. Workers draw none; a run's progress is in its TaskRun. Both libraries read
# these when first imported, which in a worker is after start-up (tasks import them in their
# bodies), and its pool's processes inherit them.
NO_PROGRESS_BARS = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}

app = Celery("marketing_ai")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app keeps its tasks beside its services; the apps also import them when they load.
app.autodiscover_tasks(
    ["crm", "crm.support", "campaigns", "campaigns.journeys", "workers"], related_name="tasks"
)


@celeryd_init.connect
def _worker_draws_no_progress_bars(**kwargs) -> None:
    for name, value in NO_PROGRESS_BARS.items():
        os.environ.setdefault(name, value)


@celeryd_after_setup.connect
def _worker_says_its_mode(sender, **kwargs) -> None:
    mode.log_banner(f"worker {sender}")


@beat_init.connect
def _beat_says_its_mode(sender, **kwargs) -> None:
    mode.log_banner("beat")


class QuietTicks(logging.Filter):
    """Drops a worker's INFO lines ("Task ... received", "... succeeded in") for the tasks
    beat runs every minute or more often (the journeys' 5-second ticks, the sweeps): at four
    lines per 5 s they buried what a terminal is for (a training finishing, a warning). Their
    failures are logged at ERROR and still show."""

    def __init__(self, tasks: set[str]) -> None:
        super().__init__()
        self.tasks = tasks

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not isinstance(record.args, dict):
            return True
        return record.args.get("name") not in self.tasks


def frequent_tasks() -> set[str]:
    return {
        entry["task"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if isinstance(entry["schedule"], Real) and entry["schedule"] <= 60
    }


@after_setup_logger.connect
def _worker_logs_no_ticks(logger, **kwargs) -> None:
    quiet = QuietTicks(frequent_tasks())
    for handler in logger.handlers:
        handler.addFilter(quiet)
