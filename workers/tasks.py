"""The platform's own tasks, on the `default` queue: the self-check (a worker on a queue reaches
the database and reports progress; staff may start it on any queue) and the run sweeper. The
apps keep their tasks beside their services (crm/tasks/, campaigns/tasks.py)."""

import logging
import platform
import time

from celery.signals import worker_ready
from django.db import connection

from workers import queues
from workers.models import TaskRun
from workers.runs import Progress, queued_task, tracked_task
from workers.services import BROKER_ERRORS
from workers.sweeper import sweep_runs as run_sweep

log = logging.getLogger(__name__)


@tracked_task(queue=queues.DEFAULT, time_limit=30 * 60)
def selfcheck(run: TaskRun, progress: Progress) -> dict:
    """Walks `steps` steps of `step_seconds` each, reporting progress, then describes the worker.

    Params: steps (int, default 5), step_seconds (float, default 0.2), device (bool: also
    report the torch device, which imports torch on the worker).
    """
    steps = max(1, min(int(run.params.get("steps", 5)), 1000))
    step_seconds = max(0.0, min(float(run.params.get("step_seconds", 0.2)), 60.0))
    for i in range(steps):
        progress(100 * i / steps, f"step {i + 1} of {steps}")
        time.sleep(step_seconds)
    report = {
        "python": platform.python_version(),
        "host": platform.node(),
        "database": connection.vendor,
        "steps": steps,
    }
    if run.params.get("device"):
        from marketing_ai.ml.device import describe  # torch, on the worker only

        report["device"] = describe()
    return report


@queued_task(queue=queues.DEFAULT, time_limit=2 * 60, acks_late=True, ignore_result=True)
def sweep_runs() -> dict:
    """Beat (TASK_RUN_SWEEP_SECONDS) and worker start: lost and orphaned runs queued again."""
    return run_sweep()


@worker_ready.connect
def _sweep_runs_on_start(sender=None, **_) -> None:
    # A worker that starts after a crash queues its predecessor's runs without waiting for beat.
    try:
        sweep_runs.delay()
    except BROKER_ERRORS:
        log.warning("run sweep not queued at worker start: the broker is unreachable")
