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

Every task of ours, tracked or not (`queued_task`), states how long it may run (`time_limit=`,
seconds; DEFAULT_TIME_LIMIT when it states none) and is retried for the transient errors in
TRANSIENT_ERRORS only, with backoff (RETRY_POLICY). A beat task that must run once a night
whatever the broker redelivers is a `nightly_task`.
"""

import datetime
import functools
import itertools
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import kombu.exceptions
import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from workers import queues
from workers.models import TaskRun
from workers.retry import retrying

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds a task that states no time_limit may run. Every task of ours states its own, sized by
# what it does: a batch of sends minutes, a segment refresh tens of minutes, training hours.
DEFAULT_TIME_LIMIT = 15 * 60

# What passes: the database went away or restarted, the broker's connection broke. Anything else
# is a bug or bad input, and fails once.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    kombu.exceptions.OperationalError,
    redis.ConnectionError,
)
# The n-th retry waits a random whole number of seconds up to RETRY_BACKOFF * 2**(n-1), at most
# RETRY_BACKOFF_MAX (Celery's full jitter): 8 retries wait about 4 minutes in all on average,
# 8.5 at most, long enough for a database restart or failover.
RETRY_BACKOFF = 2
RETRY_BACKOFF_MAX = 300
MAX_RETRIES = 8
RETRY_POLICY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": RETRY_BACKOFF,
    "retry_backoff_max": RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    "max_retries": MAX_RETRIES,
}


def time_limits(limit: float | None) -> tuple[int, int]:
    """(soft, hard) limits in seconds for a task that may run `limit` seconds (None:
    DEFAULT_TIME_LIMIT), scaled by settings.TASK_TIME_LIMIT_SCALE.

    The soft limit raises SoftTimeLimitExceeded inside the task; the hard one kills its process
    a tenth later (between 30 s and 5 min), for a body stuck where no exception reaches it.
    """
    base = DEFAULT_TIME_LIMIT if limit is None else limit
    soft = max(1, round(base * settings.TASK_TIME_LIMIT_SCALE))
    return soft, soft + min(300, max(30, soft // 10))


def retry_pause(retries: int) -> int:
    """Seconds to wait before retry number `retries + 1` (RETRY_POLICY's backoff)."""
    return get_exponential_backoff_interval(
        factor=RETRY_BACKOFF, retries=retries, maximum=RETRY_BACKOFF_MAX, full_jitter=True
    )


def _with_retries(fn: Callable[[], T], *, what: str) -> T:
    """Runs `fn()`; a transient error (TRANSIENT_ERRORS) runs it again after RETRY_POLICY's
    backoff, up to MAX_RETRIES times, then is raised. Inside a transaction it runs once: the
    transaction's owner decides."""
    for retries in itertools.count():
        try:
            return fn()
        except TRANSIENT_ERRORS as exc:
            if retries >= MAX_RETRIES or connection.in_atomic_block:
                raise
            pause = retry_pause(retries)
            logger.warning(
                "%s: %s: %s; retry %d of %d in %d s",
                what,
                type(exc).__name__,
                exc,
                retries + 1,
                MAX_RETRIES,
                pause,
            )
            # A connection the error left broken (the database restarted) is dropped, so the
            # next query opens a new one.
            connection.close_if_unusable_or_obsolete()
            time.sleep(pause)
    raise AssertionError("unreachable")


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
        while not self._stopped.wait(min(HEARTBEAT_SECONDS, _beat_seconds())):
            try:
                TaskRun.objects.filter(
                    pk=run_id, status=TaskRun.Status.RUNNING, attempts=attempt
                ).update(heartbeat_at=timezone.now())
            except Exception:
                # The body is retrying through a database restart (TRANSIENT_ERRORS): keep
                # beating, on a new connection, or the sweeper would take it for a dead worker.
                logger.warning("heartbeat of task run %s missed", run_id, exc_info=True)
                connection.close()
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
            claimed_at=now,
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


def _failed(run: TaskRun, message: str) -> None:
    """Records the exception being handled as the end of `run`'s attempt."""
    error = traceback.format_exc()
    _with_retries(
        lambda: _finish(run, status=TaskRun.Status.FAILED, message=message[:500], error=error),
        what=f"task run {run.pk}",
    )


def _soft_limit(task: Any) -> Any:
    # A limit given to apply_async travels in the message and wins over the task's own.
    _hard, soft = task.request.timelimit or (None, None)
    return soft or task.soft_time_limit


def _attempt(task: Any, run: TaskRun, body: Callable[..., dict | None], *, atomic: bool) -> Any:
    """Runs `body(run, progress)` for a run this delivery claimed, and records how it ended:
    succeeded with the body's result, failed with its error, or cancelled by staff (left as
    staff set it). Returns the result, or None when the body did not succeed.

    A transient error (TRANSIENT_ERRORS) runs the body again here, after a backoff, within this
    delivery and attempt: the run stays `running` with its heartbeat beating, so the sweeper
    does not take it for a lost worker, `attempts` keeps counting deliveries (the sweeper's
    budget for lost workers), and no write has to put the run back to `queued` while the
    database that would take it is the thing that is down. The waits count against the task's
    time limit. With `atomic`, the body's writes and the run's success commit together.
    """
    direct = task.request.is_eager or task.request.called_directly
    beating = None if direct else _Heartbeat(run)

    def succeeded(result: dict) -> None:
        _finish(run, status=TaskRun.Status.SUCCEEDED, progress=100, message="done", result=result)

    def once() -> dict:
        result = body(run, Progress(run.pk)) or {}
        if atomic:
            succeeded(result)
        return result

    try:
        # A deadlock or serialisation failure runs the body again at once (workers.retry).
        result = _with_retries(
            lambda: retrying(once, atomic=atomic), what=f"task run {run.pk} ({task.name})"
        )
    except RunCancelled:
        logger.info("task run %s was cancelled", run.pk)
        return None
    except SoftTimeLimitExceeded:
        limit = _soft_limit(task)
        logger.error("task run %s (%s) took longer than its %s s limit", run.pk, task.name, limit)
        _failed(run, f"took longer than its {limit} s limit")
        return None
    except Exception as exc:
        logger.exception("task run %s failed", run.pk)
        _failed(run, f"{type(exc).__name__}: {exc}")
        return None
    finally:
        if beating is not None:
            beating.stop()
    if not atomic:
        _with_retries(lambda: succeeded(result), what=f"task run {run.pk}")
    return result


# Set here for every task; a task states only its time_limit.
_SET_HERE = {"soft_time_limit", *RETRY_POLICY}


def queued_task(*, queue: str, time_limit: float | None = None, **options: Any) -> Callable:
    """`@shared_task(**options)` that runs on `queue` (one of workers.queues.ALL), declared here
    where the task is written and routed by workers.queues.route.

    `time_limit`: the seconds it may run (DEFAULT_TIME_LIMIT if None; see time_limits). It is
    retried after TRANSIENT_ERRORS with RETRY_POLICY's backoff; any other error fails it.
    """
    clash = _SET_HERE & set(options)
    if clash:
        raise TypeError(f"{', '.join(sorted(clash))}: set in workers.runs for every task")

    def decorate(fn: Callable) -> Any:
        name = options.pop("name", f"{fn.__module__}.{fn.__name__}")
        queues.declare(name, queue)
        soft, hard = time_limits(time_limit)
        return shared_task(
            name=name, soft_time_limit=soft, time_limit=hard, **RETRY_POLICY, **options
        )(fn)

    return decorate


def tracked_task(*, queue: str, time_limit: float | None = None, **options: Any) -> Callable:
    """Declares `fn(run, progress) -> dict | None` as a Celery task taking a TaskRun id, on
    `queue` (one of workers.queues.ALL; workers.services.task_run_start records it on the run),
    that may run `time_limit` seconds (queued_task); past it the run fails with "took longer
    than its N s limit".

    Other Celery options pass through. Every tracked task acknowledges late and is re-queued
    if its worker process dies; while the body runs a thread keeps the run's heartbeat fresh,
    so silence means a dead worker (workers.sweeper). Transient errors are retried inside the
    delivery (_attempt); one that stops the run's claim itself (the database is down when the
    message arrives) retries the message, with the same backoff.
    """

    def decorate(fn: Callable[[TaskRun, Progress], dict | None]) -> Any:
        @queued_task(
            queue=queue,
            time_limit=time_limit,
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
            _attempt(self, run, fn, atomic=False)

        return task

    return decorate


# The namespace of the nightly runs' ids: a night's run has an id made from the task's name and
# the date, so the primary key lets one delivery a night claim it.
NIGHTS = uuid.UUID("7d3c1f7e-5a52-4a3c-9a57-6f1f0e2b8c41")


def night_claim(*, task_name: str, night: datetime.date, queue: str = "") -> TaskRun | None:
    """Creates the run of `task_name` for `night`, claimed by the caller (running, attempt 1);
    None, and a line in the log, when the night's run exists already."""
    pk = uuid.uuid5(NIGHTS, f"{task_name} {night.isoformat()}")
    now = timezone.now()
    try:
        with transaction.atomic():
            return TaskRun.objects.create(
                id=pk,
                kind=task_name,
                params={"night": night.isoformat()},
                queue=queue,
                status=TaskRun.Status.RUNNING,
                attempts=1,
                sends=1,
                enqueued_at=now,
                started_at=now,
                heartbeat_at=now,
            )
    except IntegrityError:
        earlier = TaskRun.objects.filter(pk=pk).values_list("status", flat=True).first()
        logger.info(
            "%s: the night of %s is claimed already (task run %s, %s); this delivery does nothing",
            task_name,
            night.isoformat(),
            pk,
            earlier,
        )
        return None


def nightly_task(
    *, queue: str, time_limit: float | None = None, atomic: bool = False, **options: Any
) -> Callable:
    """Declares a beat task `fn() -> Any` (queued_task's `queue` and `time_limit`) that runs once
    a night however often its message is delivered.

    A delivery claims the night (the local date, TIME_ZONE, as it starts; a `night=` ISO date
    names another) by creating that night's TaskRun: a redelivery of the message (its worker was
    killed, the broker's visibility timeout passed) finds it and does nothing, and says so in
    the log. The run is tracked like any other: if its worker dies, the run sweeper sends it
    again, and the delivery that takes it over runs `fn` again. With `atomic`, what `fn` writes
    commits with the run's success (for a body that only starts runs: they start once, or, if
    the worker died, not at all until the run is taken over). Returns what `fn` returned, or None
    when this delivery did not run it.
    """

    def decorate(fn: Callable[[], Any]) -> Any:
        name = options.pop("name", f"{fn.__module__}.{fn.__name__}")

        def body(run: TaskRun, progress: Progress) -> dict:
            return {"result": fn()}

        @functools.wraps(fn)
        def task(self: Any, run_id: str | None = None, night: str | None = None) -> Any:
            if run_id is None:  # from beat
                day = datetime.date.fromisoformat(night) if night else timezone.localdate()
                run = night_claim(task_name=name, night=day, queue=queue)
            else:  # from the run sweeper: the night's worker was lost
                run = claim(run_id)
                if run is None:
                    logger.info("task run %s is finished, cancelled or taken; skipping", run_id)
            if run is None:
                return None
            outcome = _attempt(self, run, body, atomic=atomic)
            return None if outcome is None else outcome["result"]

        del task.__wrapped__  # its signature is its own (run_id, night), not fn's
        return queued_task(
            queue=queue,
            time_limit=time_limit,
            bind=True,
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            **options,
        )(task)

    return decorate
