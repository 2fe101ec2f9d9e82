"""workers.sweeper, the run sweeper, with real parts: a Celery worker process killed with SIGKILL
mid-task, a run whose message the broker never got, and runs that used up their attempts."""

import os
import signal
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import (
    start_worker,
    stop_worker,
    wait_for_log,
    wait_for_worker,
    wait_until,
    worker_log,
)
from workers import services
from workers.models import TaskRun
from workers.sweeper import sweep_runs
from workers.tasks import selfcheck

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

STALE = 3  # seconds of silence that mean a dead worker, here and in the workers started here


@pytest.fixture
def fast_sweeper(settings):
    settings.TASK_RUN_STALE_SECONDS = STALE
    settings.TASK_RUN_QUEUED_SECONDS = 2
    settings.TASK_RUN_MAX_ATTEMPTS = 3
    return {"TASK_RUN_STALE_SECONDS": str(STALE)}


def reload(run: TaskRun) -> TaskRun:
    run.refresh_from_db()
    return run


def wait_until_silent(run: TaskRun, seconds: float) -> None:
    """Until the run's last heartbeat is more than `seconds` old: what the sweeper takes for a
    dead worker (TASK_RUN_STALE_SECONDS)."""
    wait_until(
        lambda: timezone.now() - reload(run).heartbeat_at > timedelta(seconds=seconds),
        timeout=seconds + 30,
    )


def test_a_run_whose_worker_was_killed_is_queued_again_and_finishes_once(fast_sweeper):
    name = f"sweep-{uuid.uuid4().hex[:6]}"
    queue = name  # a queue of this worker's own: no other worker of the suite takes the run
    worker = start_worker(queue, name, fast_sweeper)
    try:
        wait_for_worker(name)
        run = TaskRun.objects.create(
            kind=selfcheck.name, params={"steps": 40, "step_seconds": 0.25}, queue=queue
        )
        assert services.task_run_send(run=run)
        wait_until(lambda: reload(run).progress >= 20, timeout=60, interval=0.05)
        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker, main process and pool
        worker.wait(10)
        killed_at = reload(run).progress
        assert run.status == TaskRun.Status.RUNNING and run.attempts == 1

        # Still beating? No: the heartbeat thread died with its worker.
        wait_until_silent(run, STALE)
        assert reload(run).status == TaskRun.Status.RUNNING  # and nothing else would change that
        assert sweep_runs()["requeued"] == 1
        assert reload(run).status == TaskRun.Status.QUEUED and run.sends == 2

        worker = start_worker(queue, name, fast_sweeper)
        wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=90)
        assert run.status == TaskRun.Status.SUCCEEDED, run.error
        assert run.attempts == 2 and run.result["steps"] == 40 and killed_at < 100
        finished_at = run.finished_at
        # Once: later sweeps and a duplicate delivery of the same run change nothing.
        log = worker_log(name)
        before = log.stat().st_size
        duplicate = selfcheck.apply_async(args=[str(run.pk)], queue=queue)
        wait_for_log(log, f"Task {selfcheck.name}[{duplicate.id}] succeeded", after=before)
        with open(log, "rb") as lines:
            lines.seek(before)
            assert f"task run {run.pk} is finished, cancelled or taken; skipping".encode() in (
                lines.read()
            )
        assert sweep_runs() == {"requeued": 0, "sent": 0, "failed": 0}
        assert reload(run).attempts == 2 and run.finished_at == finished_at
    finally:
        if worker.poll() is None:
            stop_worker(worker)


def test_a_run_whose_pool_process_died_is_queued_again_after_the_redelivery_skipped(
    fast_sweeper, settings
):
    """Only the pool process dies: the worker hands the message back at once, the redelivery
    finds a fresh heartbeat and skips it, and without the sweeper the run stayed `running`."""
    stale = 10  # the pool process is replaced and the message redelivered well within it
    settings.TASK_RUN_STALE_SECONDS = stale
    name = f"pool-{uuid.uuid4().hex[:6]}"
    worker = start_worker(name, name, {"TASK_RUN_STALE_SECONDS": str(stale)})
    try:
        wait_for_worker(name)
        run = TaskRun.objects.create(
            kind=selfcheck.name, params={"steps": 40, "step_seconds": 0.25}, queue=name
        )
        assert services.task_run_send(run=run)
        wait_until(lambda: reload(run).progress >= 10, timeout=60, interval=0.05)
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        assert len(children) == 1  # concurrency 1: the pool process running the task
        os.kill(int(children[0]), signal.SIGKILL)
        # The worker hands the message back; its redelivery finds the heartbeat fresh and skips.
        wait_for_log(worker_log(name), f"task run {run.pk} is finished, cancelled or taken")
        wait_until_silent(run, stale)
        assert reload(run).status == TaskRun.Status.RUNNING and run.attempts == 1  # skipped
        assert sweep_runs()["requeued"] == 1
        wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=90)
        assert run.status == TaskRun.Status.SUCCEEDED and run.attempts == 2, run.error
    finally:
        stop_worker(worker)


def test_a_run_whose_message_was_lost_is_sent_again(fast_sweeper, live_worker):
    # What a Redis restart without persistence leaves: the broker took the message, then lost it.
    run = TaskRun.objects.create(
        kind=selfcheck.name,
        params={"steps": 2, "step_seconds": 0},
        queue="default",
        enqueued_at=timezone.now() - timedelta(seconds=60),
        sends=1,
    )
    time.sleep(1)
    assert reload(run).status == TaskRun.Status.QUEUED  # nobody knows of it but the database
    assert sweep_runs()["sent"] == 1
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=60)
    assert run.status == TaskRun.Status.SUCCEEDED and run.attempts == 1 and run.sends == 2


def test_a_queued_run_behind_a_live_one_is_waiting_not_lost(fast_sweeper):
    now = timezone.now()
    TaskRun.objects.create(kind="x", queue="ml", status="running", attempts=1, heartbeat_at=now)
    waiting = TaskRun.objects.create(
        kind="y", queue="ml", enqueued_at=now - timedelta(hours=1), sends=3
    )
    assert sweep_runs() == {"requeued": 0, "sent": 0, "failed": 0}
    assert reload(waiting).status == TaskRun.Status.QUEUED and waiting.sends == 3


def test_runs_out_of_attempts_fail_with_the_reason(fast_sweeper, own_redis):
    # own_redis: the run sent again goes to a broker no worker reads (the session's live
    # worker would take it and have it running before the asserts).
    long_ago = timezone.now() - timedelta(hours=1)
    lost_thrice = TaskRun.objects.create(
        kind=selfcheck.name,
        queue="default",
        status="running",
        attempts=3,
        sends=3,
        heartbeat_at=long_ago,
    )
    lost_once = TaskRun.objects.create(
        kind=selfcheck.name,
        queue="gpu",
        status="running",
        attempts=1,
        sends=1,
        heartbeat_at=long_ago,
        params={"steps": 1},
    )
    never_taken = TaskRun.objects.create(
        kind=selfcheck.name, queue="sends", enqueued_at=long_ago, sends=3
    )
    counts = sweep_runs()
    assert counts["failed"] == 2 and counts["requeued"] == 1
    assert reload(lost_thrice).status == TaskRun.Status.FAILED
    assert lost_thrice.message == "worker lost 3 times" and lost_thrice.finished_at
    assert reload(never_taken).status == TaskRun.Status.FAILED
    assert never_taken.message.startswith("never picked up: sent 3 times")
    assert reload(lost_once).status == TaskRun.Status.QUEUED and lost_once.sends == 2
    assert "attempt 2 of 3" in lost_once.message


def test_a_run_that_beat_for_its_whole_time_limit_was_killed_at_it_and_fails(fast_sweeper):
    now = timezone.now()
    limit = selfcheck.soft_time_limit
    killed = TaskRun.objects.create(
        kind=selfcheck.name, queue="default", status="running", attempts=1, sends=1,
        claimed_at=now - timedelta(seconds=limit + 60), heartbeat_at=now - timedelta(seconds=50),
    )  # fmt: skip
    died = TaskRun.objects.create(
        kind=selfcheck.name, queue="default", status="running", attempts=1, sends=1,
        claimed_at=now - timedelta(seconds=120), heartbeat_at=now - timedelta(seconds=50),
    )  # fmt: skip
    counts = sweep_runs()
    assert reload(killed).status == TaskRun.Status.FAILED
    assert killed.message == f"killed: ran past its {limit} s time limit"
    assert reload(died).status == TaskRun.Status.QUEUED  # an early death is tried again
    assert counts["failed"] == 1 and counts["requeued"] == 1


def test_the_sweeper_runs_on_beat_and_at_worker_start(settings):
    from celery.signals import worker_ready

    entry = settings.CELERY_BEAT_SCHEDULE["task-runs-sweep"]
    assert entry["task"] == "workers.tasks.sweep_runs"
    receivers = [r[1]() for r in worker_ready.receivers]
    assert any(getattr(r, "__name__", "") == "_sweep_runs_on_start" for r in receivers)
