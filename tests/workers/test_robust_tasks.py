"""Per-task time limits, retries of transient errors only, and nightly tasks that run once a night,
through a real Celery worker and real failures: a worker of this module's own (it imports the
tasks below) on a queue of its own, a database whose connections are cut under a running task,
and the same beat message delivered twice."""

import datetime
import itertools
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import kombu.exceptions
import pytest
import redis
from celery.signals import task_postrun
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from crm.models import Segment
from crm.tasks.models import retrain_nightly, retrain_recommenders_nightly
from crm.tasks.segments import refresh_all
from tests.conftest import ROOT, stop_worker, wait_for_worker, wait_until, worker_env
from tests.crm.factories import CustomerFactory, SegmentFactory, WorkspaceFactory
from workers import queues, services
from workers.celery import app
from workers.models import ModelVersion, TaskRun
from workers.runs import (
    DEFAULT_TIME_LIMIT,
    MAX_RETRIES,
    RETRY_BACKOFF,
    TRANSIENT_ERRORS,
    night_claim,
    queued_task,
    time_limits,
    tracked_task,
)

pytestmark = pytest.mark.timeout(240)

OURS = ("crm.", "campaigns.", "workers.")
ERRORS = {
    "database": OperationalError,
    "interface": InterfaceError,
    "broker": kombu.exceptions.OperationalError,
    "redis": redis.ConnectionError,
    "value": ValueError,
}
STALE = 2  # seconds of silence that mean a lost worker, in this module's worker: beats every 0.5 s


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def reload(run: TaskRun) -> TaskRun:
    run.refresh_from_db()
    return run


# --- tasks that exist only here and in this module's worker -------------------------------------


@tracked_task(queue=queues.DEFAULT, time_limit=1, name="tests.robust.slow")
def slow(run: TaskRun, progress) -> dict:
    for i in range(300):  # 30 s, unless its limit of 1 s stops it
        progress(i / 3, "working")
        time.sleep(0.1)
    return {}


@queued_task(queue=queues.DEFAULT, time_limit=60, name="tests.robust.fails_once")
def fails_once(key: str, error: str) -> int:
    """Raises ERRORS[error] on its first call (calls counted in Redis under `key`)."""
    calls = client().rpush(key, time.time())
    if calls == 1:
        raise ERRORS[error]("the first call fails")
    return calls


@tracked_task(queue=queues.DEFAULT, time_limit=60, name="tests.robust.fails_once_tracked")
def fails_once_tracked(run: TaskRun, progress) -> dict:
    calls = client().rpush(f"calls:{run.pk}", time.time())
    if calls == 1:
        raise ERRORS[run.params["error"]]("the first call fails")
    return {"calls": calls}


@tracked_task(queue=queues.DEFAULT, time_limit=120, name="tests.robust.cut_off")
def cut_off(run: TaskRun, progress) -> dict:
    """Writes its progress until the database cuts its connection; the second call writes
    nothing (only the heartbeat thread does) and waits for the test to let it finish."""
    calls = client().rpush(f"calls:{run.pk}", time.time())
    if calls == 1:
        for i in itertools.count():
            progress(1 + i % 90, f"step {i}")  # a write each time: the cut is met at once
            time.sleep(0.02)
    waiting = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=None)  # not redis-py's 5 s
    waiting.blpop([f"go:{run.pk}"], timeout=60)
    return {"calls": calls}


def step_of(run: TaskRun) -> int:
    words = run.message.split()
    return int(words[1]) if words[:1] == ["step"] else 0


@task_postrun.connect
def _record_how_it_ended(sender=None, task_id=None, state=None, **_) -> None:
    # In this module's worker: how each delivery ended (SUCCESS, RETRY, FAILURE), in order.
    watched = sender.name.startswith("tests.robust.") or sender.name == refresh_all.name
    if watched and not sender.request.is_eager:
        client().rpush(f"states:{task_id}", state)


def states(task_id: str) -> list[str]:
    return [s.decode() for s in client().lrange(f"states:{task_id}", 0, -1)]


@pytest.fixture(scope="module")
def own_worker(django_db_setup, django_db_blocker, redis_url):
    """A worker that imports this module, on a queue of its own (the suite's live worker knows
    none of the tasks above); yields the queue and the worker's log file."""
    name = f"robust-{uuid.uuid4().hex[:6]}"
    log_path = Path(tempfile.gettempdir()) / f"test-worker-{name}.log"
    celery = str(Path(sys.executable).parent / "celery")
    with django_db_blocker.unblock(), open(log_path, "a") as log:
        command = [celery, "-A", "workers", "worker", "-Q", name, "--concurrency", "1"]
        command += ["--hostname", f"{name}@%h", "--loglevel", "INFO", "--include", __name__]
        process = subprocess.Popen(
            [*command, "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=worker_env({"TASK_RUN_STALE_SECONDS": str(STALE)}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_worker(name)
        yield {"queue": name, "log": log_path}
    finally:
        stop_worker(process)


# --- time limits ----------------------------------------------------------------------------


def test_every_task_of_ours_has_a_time_limit_and_the_retry_policy():
    ours = {name: task for name, task in app.tasks.items() if name.startswith(OURS)}
    assert len(ours) > 20
    for name, task in ours.items():
        assert task.soft_time_limit and task.time_limit > task.soft_time_limit, name
        assert tuple(task.autoretry_for) == TRANSIENT_ERRORS, name
        assert task.max_retries == MAX_RETRIES and task.retry_backoff == RETRY_BACKOFF, name
    assert app.conf.task_soft_time_limit is None and app.conf.task_time_limit is None
    limit = {name: task.soft_time_limit for name, task in ours.items()}
    # Sized by what they do: a batch of sends minutes, a segment tens of minutes, training hours.
    assert limit["campaigns.tasks.deliver"] <= 10 * 60
    assert 10 * 60 <= limit["crm.tasks.segments.refresh"] <= 60 * 60
    assert limit["crm.tasks.models.train_recommender"] >= 2 * 3600
    assert limit["crm.tasks.models.train_sequential_recommender"] >= 2 * 3600


def test_limits_are_scaled_by_the_operators_setting_and_the_hard_one_follows(settings):
    assert time_limits(None) == (DEFAULT_TIME_LIMIT, DEFAULT_TIME_LIMIT + 90)
    assert time_limits(60) == (60, 90)  # at least 30 s between soft and hard
    assert time_limits(4 * 3600) == (14400, 14700)  # at most 5 minutes
    settings.TASK_TIME_LIMIT_SCALE = 2
    assert time_limits(30 * 60) == (3600, 3900)
    settings.TASK_TIME_LIMIT_SCALE = 0.0001
    assert time_limits(60) == (1, 31)  # never under a second


def test_queued_task_refuses_limits_and_retries_of_a_tasks_own():
    with pytest.raises(TypeError, match="autoretry_for: set in workers.runs"):
        queued_task(queue=queues.DEFAULT, autoretry_for=(ValueError,))
    with pytest.raises(TypeError, match="soft_time_limit"):
        queued_task(queue=queues.DEFAULT, soft_time_limit=5)


@pytest.mark.django_db(transaction=True)
def test_a_tracked_task_past_its_limit_fails_saying_so(own_worker):
    run = TaskRun.objects.create(kind=slow.name, queue=own_worker["queue"])
    assert services.task_run_send(run=run)
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=30)
    assert run.status == TaskRun.Status.FAILED
    assert run.message == "took longer than its 1 s limit"
    assert "SoftTimeLimitExceeded" in run.error
    assert 1 <= (run.finished_at - run.started_at).total_seconds() < 5


# --- retries: transient errors only, with backoff --------------------------------------------


@pytest.mark.parametrize("error", ["database", "interface", "broker", "redis"])
def test_a_task_that_meets_a_transient_error_once_succeeds_on_its_retry(own_worker, error):
    key = f"calls:{uuid.uuid4().hex}"
    sent = fails_once.apply_async(args=[key, error], queue=own_worker["queue"])
    wait_until(lambda: len(states(sent.id)) >= 2, timeout=30)
    assert states(sent.id) == ["RETRY", "SUCCESS"]
    first, second = (float(t) for t in client().lrange(key, 0, -1))
    # The first retry waits a random 0..RETRY_BACKOFF s (full jitter), plus the worker's pickup.
    assert second - first < RETRY_BACKOFF + 1.5


def test_any_other_error_fails_at_once(own_worker):
    key = f"calls:{uuid.uuid4().hex}"
    sent = fails_once.apply_async(args=[key, "value"], queue=own_worker["queue"])
    wait_until(lambda: states(sent.id), timeout=30)
    assert states(sent.id) == ["FAILURE"]  # not RETRY: no second delivery was queued
    assert client().llen(key) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("error", ["database", "redis"])
def test_a_tracked_task_retries_a_transient_error_within_its_attempt(own_worker, error):
    run = TaskRun.objects.create(
        kind=fails_once_tracked.name, queue=own_worker["queue"], params={"error": error}
    )
    assert services.task_run_send(run=run)
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=30)
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.result == {"calls": 2}
    assert run.attempts == 1  # one delivery, its body run twice


@pytest.mark.django_db(transaction=True)
def test_a_tracked_task_fails_at_once_on_any_other_error(own_worker):
    run = TaskRun.objects.create(
        kind=fails_once_tracked.name, queue=own_worker["queue"], params={"error": "value"}
    )
    assert services.task_run_send(run=run)
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=30)
    assert run.status == TaskRun.Status.FAILED
    assert run.message == "ValueError: the first call fails"
    assert client().llen(f"calls:{run.pk}") == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="cuts PostgreSQL's connections")
@pytest.mark.django_db(transaction=True)
def test_a_database_restart_under_a_running_task_is_retried_and_its_heartbeat_goes_on(own_worker):
    run = TaskRun.objects.create(kind=cut_off.name, queue=own_worker["queue"])
    assert services.task_run_send(run=run)
    # Past 75 steps (1.5 s) the heartbeat thread has beaten on a connection of its own too.
    wait_until(lambda: step_of(reload(run)) >= 75, timeout=30)
    with connection.cursor() as cursor:  # what a restart does to every other session
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    cut_at = timezone.now()
    wait_until(lambda: client().llen(f"calls:{run.pk}") == 2, timeout=30)
    # The body now writes nothing: a newer heartbeat is the heartbeat thread's, on a new
    # connection, so the sweeper would not take the run for a lost worker.
    wait_until(lambda: reload(run).heartbeat_at > cut_at, timeout=STALE * 3, interval=0.1)
    assert run.status == TaskRun.Status.RUNNING
    client().rpush(f"go:{run.pk}", 1)
    wait_until(lambda: reload(run).status in TaskRun.FINISHED, timeout=30)
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.result == {"calls": 2} and run.attempts == 1


# --- a nightly task runs once a night ---------------------------------------------------------


@pytest.fixture
def active_models(db) -> dict:
    """An active churn, CLV and recommender version, so each nightly retrain has a run to start."""
    workspace = WorkspaceFactory()
    for family, params in [
        ("predict.churn", {"horizon_days": 90}),
        ("predict.clv", {"horizon_weeks": 52}),
        ("recommend.ease", {"model": "ease", "l2": 50.0}),
    ]:
        ModelVersion.objects.create(
            workspace=workspace, family=family, version=1, params=params, status="active"
        )
    return {"workspace": workspace}


def training_runs() -> dict[str, int]:
    kinds = ("train_churn", "train_clv", "train_recommender")
    return {kind: TaskRun.objects.filter(kind=f"crm.tasks.models.{kind}").count() for kind in kinds}


@pytest.mark.django_db
def test_a_nightly_retrain_delivered_twice_starts_one_set_of_runs(active_models, caplog):
    caplog.set_level("INFO", logger="workers.runs")
    for task in (retrain_nightly, retrain_recommenders_nightly):
        assert task.apply().get() == (2 if task is retrain_nightly else 1)
        assert task.apply().get() is None  # the same night's message, delivered again
    assert training_runs() == {"train_churn": 1, "train_clv": 1, "train_recommender": 1}
    said = [r.getMessage() for r in caplog.records if "claimed already" in r.getMessage()]
    assert len(said) == 2 and all("this delivery does nothing" in line for line in said)
    tonight = TaskRun.objects.get(kind=retrain_nightly.name)
    assert tonight.status == TaskRun.Status.SUCCEEDED and tonight.result == {"result": 2}
    assert tonight.params == {"night": timezone.localdate().isoformat()}

    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert retrain_nightly.apply(kwargs={"night": tomorrow}).get() == 2
    assert retrain_recommenders_nightly.apply(kwargs={"night": tomorrow}).get() == 1
    assert training_runs() == {"train_churn": 2, "train_clv": 2, "train_recommender": 2}


@pytest.mark.django_db
def test_a_nightly_run_whose_worker_was_lost_is_taken_over_and_starts_its_runs_once(
    active_models,
):
    # A delivery claimed tonight and its worker died before its transaction committed: no
    # training run exists, and the night's run has gone silent.
    night = timezone.localdate()
    run = night_claim(task_name=retrain_nightly.name, night=night, queue=queues.ML)
    TaskRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert retrain_nightly.apply().get() is None  # beat's message again: the night is taken
    # What the run sweeper sends for a lost run (workers.services.task_run_send): its id.
    assert retrain_nightly.apply(args=[str(run.pk)]).get() == 2
    assert training_runs()["train_churn"] == 1 and training_runs()["train_clv"] == 1
    assert reload(run).status == TaskRun.Status.SUCCEEDED and run.attempts == 2
    assert retrain_nightly.apply(args=[str(run.pk)]).get() is None  # a second sweep's message


@pytest.mark.django_db
def test_a_night_is_a_date():
    with pytest.raises(ValueError):
        retrain_nightly.apply(kwargs={"night": "tonight"}).get()
    night_claim(task_name=retrain_nightly.name, night=datetime.date(2024, 5, 1))
    assert night_claim(task_name=retrain_nightly.name, night=datetime.date(2024, 5, 1)) is None
    assert night_claim(task_name=refresh_all.name, night=datetime.date(2024, 5, 1)) is not None


@pytest.mark.django_db(transaction=True)
def test_the_nightly_segment_refresh_delivered_twice_runs_once(own_worker):
    workspace = WorkspaceFactory()
    CustomerFactory(workspace=workspace)
    rules = {"event": "view", "count": {"op": "gte", "value": 2}}
    segment = SegmentFactory(workspace=workspace, kind=Segment.Kind.RULES, rules=rules)
    message_id = str(uuid.uuid4())
    for _ in range(2):  # a redelivery carries the same message, id and all
        app.send_task(refresh_all.name, task_id=message_id, queue=own_worker["queue"])
    wait_until(lambda: len(states(message_id)) == 2, timeout=60)
    assert states(message_id) == ["SUCCESS", "SUCCESS"]
    tonight = TaskRun.objects.get(kind=refresh_all.name)
    assert tonight.status == TaskRun.Status.SUCCEEDED and tonight.attempts == 1
    segment.refresh_from_db()
    assert tonight.started_at <= segment.refreshed_at <= tonight.finished_at  # refreshed once
    log = own_worker["log"].read_text()
    assert f"{refresh_all.name}: the night of {tonight.params['night']} is claimed" in log
