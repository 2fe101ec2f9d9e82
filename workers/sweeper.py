"""The run sweeper: one for every TaskRun (beat, every TASK_RUN_SWEEP_SECONDS; and when a worker
starts). The database is the source of truth and the broker only carries nudges, so a run whose
message was lost, or whose worker died, is found here and queued again:

- `running` with a stale heartbeat (silent for TASK_RUN_STALE_SECONDS; a live task beats from a
  thread of its own, see workers.runs): its worker died. Queued again, and `failed` with
  "worker lost N times" once TASK_RUN_MAX_ATTEMPTS attempts have each been lost. A run that beat
  for its task's whole time limit before it went silent was killed at its hard limit (a body
  stuck where the soft limit's exception could not reach it): `failed` with that reason at once,
  since running it again would be killed the same way.
- `queued` and never sent (the broker was down when it started): sent now.
- `queued`, sent TASK_RUN_QUEUED_SECONDS ago and not taken, on a queue where nothing is running:
  the broker lost the message (a Redis restart). Sent again, and `failed` with "never picked up"
  after TASK_RUN_MAX_ATTEMPTS sends that no worker took. A queue with a live run is busy, not
  lost: a run waiting behind a long training is left alone however long it waits.

Sending twice is harmless: the first delivery claims the run, a later one finds it taken
(workers.runs.claim).
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from workers.celery import app
from workers.models import TaskRun
from workers.runs import stale_after
from workers.services import task_run_send


def sweep_runs() -> dict:
    """One pass over the unfinished runs; returns how many were requeued, sent and failed."""
    now = timezone.now()
    stale = now - stale_after()
    limit = settings.TASK_RUN_MAX_ATTEMPTS
    counts = {"requeued": 0, "sent": 0, "failed": 0}

    silent = TaskRun.objects.filter(status=TaskRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
    )
    for run in silent.only("pk", "kind", "attempts", "heartbeat_at", "claimed_at"):
        # Guarded by the heartbeat read: a run that beat again since is alive after all.
        same = TaskRun.objects.filter(
            pk=run.pk, status=TaskRun.Status.RUNNING, heartbeat_at=run.heartbeat_at
        )
        killed_at = _past_its_limit(run)
        if killed_at:
            counts["failed"] += _fail(same, f"killed: ran past its {killed_at} s time limit", now)
        elif run.attempts >= limit:
            reason = f"worker lost {run.attempts} times"
            counts["failed"] += _fail(same, reason, now)
        else:
            counts["requeued"] += same.update(
                status=TaskRun.Status.QUEUED,
                enqueued_at=None,  # sent just below
                message=f"worker lost; queued again (attempt {run.attempts + 1} of {limit})",
            )

    for run in TaskRun.objects.filter(status=TaskRun.Status.QUEUED, enqueued_at__isnull=True):
        if not task_run_send(run=run, retry_now=True):
            return counts  # the broker is still down: the next pass tries again
        counts["sent"] += 1

    busy = TaskRun.objects.filter(status=TaskRun.Status.RUNNING, heartbeat_at__gte=stale)
    lost = TaskRun.objects.filter(
        status=TaskRun.Status.QUEUED,
        enqueued_at__lt=now - timedelta(seconds=settings.TASK_RUN_QUEUED_SECONDS),
    ).exclude(queue__in=busy.values("queue"))
    for run in lost:
        untaken = run.sends - run.attempts  # messages sent since a worker last took it
        if untaken >= limit:
            same = TaskRun.objects.filter(
                pk=run.pk, status=TaskRun.Status.QUEUED, enqueued_at=run.enqueued_at
            )
            reason = f"never picked up: sent {untaken} times, no worker of {run.queue!r} took it"
            counts["failed"] += _fail(same, reason, now)
        elif task_run_send(run=run, retry_now=True):
            counts["sent"] += 1
        else:
            break
    return counts


def _past_its_limit(run: TaskRun) -> int | None:
    """The task's soft time limit when this attempt beat for at least that long, else None."""
    task = app.tasks.get(run.kind)
    soft = getattr(task, "soft_time_limit", None)
    if not soft or run.claimed_at is None or run.heartbeat_at is None:
        return None
    return int(soft) if (run.heartbeat_at - run.claimed_at).total_seconds() >= soft else None


def _fail(runs, reason: str, now) -> int:
    return runs.update(
        status=TaskRun.Status.FAILED, finished_at=now, message=reason[:500], error=reason
    )
