"""Platform tasks: the self-check (a worker on a queue reaches the database and reports progress),
the run sweeper and the purge of stored Idempotency-Key answers."""

import logging
import platform
import time

from celery import shared_task
from celery.signals import worker_ready
from django.db import connection

from workers.models import TaskRun
from workers.retry import retrying
from workers.services import BROKER_ERRORS
from workers.tracking import Progress, tracked_task

log = logging.getLogger(__name__)


@tracked_task()
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
        from marketing_ai.ml.device import describe

        report["device"] = describe()
    return report


@shared_task(acks_late=True, ignore_result=True)
def sweep_runs() -> dict:
    """Beat (TASK_RUN_SWEEP_SECONDS) and worker start: lost and orphaned runs queued again."""
    from workers.sweeper import sweep_runs as run_sweep

    return run_sweep()


@worker_ready.connect
def _sweep_runs_on_start(sender=None, **_) -> None:
    # A worker that starts after a crash queues its predecessor's runs without waiting for beat.
    try:
        sweep_runs.delay()
    except BROKER_ERRORS:
        log.warning("run sweep not queued at worker start: the broker is unreachable")


@shared_task(acks_late=True, ignore_result=True)
def purge_idempotency_records() -> int:
    """Beat, hourly: stored Idempotency-Key answers past IDEMPOTENCY_KEY_TTL_HOURS."""
    from crm.services.idempotency import idempotency_records_purge

    return retrying(idempotency_records_purge, atomic=False)
