"""Celery tasks that run against a TaskRun row and report progress to it.

A tracked task is declared as

    @tracked_task(queue=queues.ML)
    def retrain(run: TaskRun, progress: Progress) -> dict:
        ...
        progress(40, "fitting")
        return {"rows": n}

and started with `workers.services.task_run_start(task=retrain, params=...)`. Celery passes only
the run's id; the body reads its parameters from the row. Delivering the same message twice is
harmless: a finished or cancelled run is not run again, and a running one is taken over only when
its heartbeat has gone stale (the worker that had it died).
"""

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from workers import queues
from workers.models import TaskRun
from workers.retry import retrying

logger = logging.getLogger(__name__)

# A running task reports at least this often (Progress writes a heartbeat at least every
# HEARTBEAT_SECONDS); a run silent for TASK_RUN_STALE_SECONDS (settings, default 120) has lost
# its worker: a delivery that finds it takes it over, and the run sweeper queues it again.
HEARTBEAT_SECONDS = 10


def stale_after() -> timedelta:
    return timedelta(seconds=settings.TASK_RUN_STALE_SECONDS)


def _beat_seconds() -> float:
    # Several heartbeats fit in the stale window even where a test shortens it to seconds.
    return settings.TASK_RUN_STALE_SECONDS / 4


class RunCancelled(Exception):
    """Raised inside a task body when staff cancelled its run."""


class Progress:
    """Reports a run's progress (0-100) and message; raises RunCancelled once it is cancelled.

    Writes are throttled: the row changes when the whole percentage or the message changes, or
    when the heartbeat is due, so a loop may call it per item.
    """

    def __init__(self, run_id: Any) -> None:
        self.run_id = run_id
        self._percent = -1
        self._message: str | None = None
        self._beat = 0.0

    def __call__(self, percent: float, message: str | None = None) -> None:
        percent = max(0, min(99, int(percent)))  # 100 is written only on success
        now = time.monotonic()
        changed = percent != self._percent or (message is not None and message != self._message)
        if not changed and now - self._beat < min(HEARTBEAT_SECONDS, _beat_seconds()):
            return
        fields: dict[str, Any] = {"progress": percent, "heartbeat_at": timezone.now()}
        if message is not None:
            fields["message"] = message[:500]
        updated = TaskRun.objects.filter(pk=self.run_id, status=TaskRun.Status.RUNNING).update(
            **fields
        )
        if not updated:
            raise RunCancelled(str(self.run_id))
        self._percent, self._beat = percent, now
        if message is not None:
            self._message = message

    def span(self, start: float, end: float) -> "Progress":
        """A reporter whose 0-100 maps onto [start, end] of this one (for sub-steps)."""
        return _SubProgress(self, start, end)


class _SubProgress(Progress):
    def __init__(self, parent: Progress, start: float, end: float) -> None:
        self.parent, self.start, self.end = parent, start, end

    def __call__(self, percent: float, message: str | None = None) -> None:
        self.parent(self.start + (self.end - self.start) * percent / 100, message)


class _Heartbeat:
    """Beats for a run from a thread of its own while the task body works, so a long step that
    reports no progress (one model fit) is not taken for a dead worker. Only this attempt's
    claim is refreshed: once the sweeper queues the run again, this thread beats for nothing."""

    def __init__(self, run: TaskRun) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(run.pk, run.attempts), name=f"heartbeat-{run.pk}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        # Not joined: a beat waiting on a busy database must not hold up the task's own finish.
        self._stopped.set()

    def _beat(self, run_id: Any, attempt: int) -> None:
        try:
            while not self._stopped.wait(min(HEARTBEAT_SECONDS, _beat_seconds())):
                TaskRun.objects.filter(
                    pk=run_id, status=TaskRun.Status.RUNNING, attempts=attempt
                ).update(heartbeat_at=timezone.now())
        except Exception:  # the next beat or the sweeper copes; a task must not die of this
            logger.warning("heartbeat of task run %s stopped", run_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection


def claim(run_id: Any) -> TaskRun | None:
    """Marks the run RUNNING for this delivery, or returns None when it must not run."""
    now = timezone.now()
    claimed = (
        TaskRun.objects.filter(pk=run_id)
        .filter(
            Q(status=TaskRun.Status.QUEUED)
            | Q(status=TaskRun.Status.RUNNING, heartbeat_at__lt=now - stale_after())
        )
        .update(
            status=TaskRun.Status.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
    )
    return TaskRun.objects.get(pk=run_id) if claimed else None


def _finish(run: TaskRun, **fields: Any) -> None:
    # This attempt's own claim only: after a takeover the newer attempt reports the outcome.
    TaskRun.objects.filter(pk=run.pk, status=TaskRun.Status.RUNNING, attempts=run.attempts).update(
        finished_at=timezone.now(), heartbeat_at=timezone.now(), **fields
    )


def queued_task(*, queue: str, **options: Any) -> Callable:
    """`@shared_task(**options)` that runs on `queue` (one of workers.queues.ALL), declared here
    where the task is written and routed by workers.queues.route."""

    def decorate(fn: Callable) -> Any:
        name = options.pop("name", f"{fn.__module__}.{fn.__name__}")
        queues.declare(name, queue)
        return shared_task(name=name, **options)(fn)

    return decorate


def tracked_task(*, queue: str, **options: Any) -> Callable:
    """Declares `fn(run, progress) -> dict | None` as a Celery task taking a TaskRun id, on
    `queue` (one of workers.queues.ALL; workers.services.task_run_start records it on the run).

    Other Celery options pass through. Every tracked task acknowledges late and is re-queued
    if its worker process dies; while the body runs a thread keeps the run's heartbeat fresh,
    so silence means a dead worker (workers.sweeper).
    """

    def decorate(fn: Callable[[TaskRun, Progress], dict | None]) -> Any:
        @queued_task(
            queue=queue,
            bind=True,
            name=options.pop("name", f"{fn.__module__}.{fn.__name__}"),
            acks_late=True,
            reject_on_worker_lost=True,
            **options,
        )
        @functools.wraps(fn)
        def task(self: Any, run_id: str) -> None:
            run = claim(run_id)
            if run is None:
                logger.info("task run %s is finished, cancelled or taken; skipping", run_id)
                return
            beating = None if self.request.is_eager else _Heartbeat(run)
            try:
                # A deadlock or serialisation failure runs the body again (tasks are safe to run
                # twice) before the run is failed.
                result = retrying(lambda: fn(run, Progress(run.pk)), atomic=False)
            except RunCancelled:
                logger.info("task run %s was cancelled", run_id)
                return
            except Exception as exc:
                logger.exception("task run %s failed", run_id)
                _finish(
                    run,
                    status=TaskRun.Status.FAILED,
                    message=f"{type(exc).__name__}: {exc}"[:500],
                    error=traceback.format_exc(),
                )
                return
            finally:
                if beating is not None:
                    beating.stop()
            _finish(
                run,
                status=TaskRun.Status.SUCCEEDED,
                progress=100,
                message="done",
                result=result or {},
            )

        return task

    return decorate
