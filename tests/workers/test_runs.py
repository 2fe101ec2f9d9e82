"""Tracked tasks through a real Celery worker and a real Redis server (not eager mode)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import wait_for_log, wait_until, worker_log
from workers import services
from workers.models import TaskRun
from workers.runs import claim
from workers.tasks import selfcheck

pytestmark = pytest.mark.django_db(transaction=True)


def reload(run: TaskRun) -> TaskRun:
    run.refresh_from_db()
    return run


def test_worker_runs_task_and_reports_progress(live_worker):
    run = services.task_run_start(task=selfcheck, params={"steps": 8, "step_seconds": 0.4})
    assert run.status == TaskRun.Status.QUEUED and run.queue == "default"

    seen = set()

    def finished() -> bool:
        current = reload(run)
        seen.add(current.progress)
        return current.status in TaskRun.FINISHED

    wait_until(finished, timeout=30, interval=0.05)
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.progress == 100
    assert any(0 < p < 100 for p in seen), f"no intermediate progress seen: {sorted(seen)}"
    assert run.attempts == 1
    assert run.started_at and run.finished_at and run.finished_at >= run.started_at
    assert run.result["steps"] == 8
    assert run.result["database"] in ("sqlite", "postgresql")


def test_run_on_named_queue_reaches_a_worker_of_that_queue(live_worker):
    run = services.task_run_start(task=selfcheck, params={"steps": 1}, queue="gpu")
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=30)
    assert run.status == TaskRun.Status.SUCCEEDED and run.queue == "gpu"


def test_failure_is_recorded_with_its_error(live_worker):
    run = services.task_run_start(task=selfcheck, params={"steps": "many"})
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=30)
    assert run.status == TaskRun.Status.FAILED
    assert "ValueError" in run.message and "Traceback" in run.error


def test_cancel_stops_a_running_task(live_worker):
    run = services.task_run_start(task=selfcheck, params={"steps": 200, "step_seconds": 0.1})
    wait_until(lambda: reload(run).progress > 0, timeout=30)
    log = worker_log(live_worker)
    before = log.stat().st_size
    assert services.task_run_cancel(run=run)
    # The body notices at its next progress report and stops; nothing marks it succeeded.
    wait_for_log(log, f"task run {run.pk} was cancelled", after=before, timeout=30)
    assert reload(run).status == TaskRun.Status.CANCELLED
    assert run.progress < 100
    assert not services.task_run_cancel(run=run)  # already finished


def test_delivering_the_same_run_twice_runs_it_once(live_worker):
    log = worker_log(live_worker)
    before = log.stat().st_size
    run = services.task_run_start(task=selfcheck, params={"steps": 3, "step_seconds": 0.2})
    selfcheck.apply_async(args=[str(run.pk)], queue="default")  # a duplicate delivery
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=30)
    # Whichever delivery came second found the run taken or finished, and said so.
    wait_for_log(log, f"task run {run.pk} is finished, cancelled or taken", after=before)
    assert reload(run).attempts == 1
    assert run.status == TaskRun.Status.SUCCEEDED


def test_claim_takes_over_only_a_silent_run():
    run = TaskRun.objects.create(kind="x")
    assert claim(run.pk) is not None  # queued -> running
    assert claim(run.pk) is None  # running with a fresh heartbeat: another delivery skips
    TaskRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    taken = claim(run.pk)  # its worker died: the redelivery takes it over
    assert taken is not None and taken.attempts == 2
    TaskRun.objects.filter(pk=run.pk).update(status=TaskRun.Status.SUCCEEDED)
    assert claim(run.pk) is None


def test_start_rejects_unknown_queue():
    with pytest.raises(ValueError, match="unknown queue"):
        services.task_run_start(task=selfcheck, queue="nope")
