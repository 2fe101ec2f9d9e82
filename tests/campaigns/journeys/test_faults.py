"""Journeys exactly once under faults, with every part real: Celery workers and beat as
processes, a Redis server, PostgreSQL and an SMTP server that logs every message it accepts.

A few thousand enrolments wait in a delay whose timers fall due over a few seconds, while the
worker is SIGKILLed twice (main process and pool), while Redis restarts empty (every queued task
lost), and while PostgreSQL restarts (fast shutdown, then start: every connection cut, every open
transaction rolled back). The journey after the delay: a condition, a send for those it lets
through (an e-mail through the send ledger, the holdout skipped), an update of an attribute for
everyone, an exit. Each run ends with every enrolment finished, each step once in its history,
one message per expected recipient at the SMTP server and in the ledger, none for the holdout,
no timer left and none stuck.

PostgreSQL's restart is done to a cluster of the test's own (tests.conftest.OwnPostgres): the
suite's own connection lives on the other one. Its data is made in a subprocess pointed at it,
and every run's results are read with psycopg from the database the workers used.

The kills step around the send ledger's COMMIT -> "." hand-off (tests.conftest
kill_outside_hand_off; campaigns/ledger.py says why it is the one window no order of writes
closes).
"""

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import connection, transaction

from campaigns.journeys import engine, services
from crm.models import Customer, Workspace
from tests.campaigns.journeys.helpers import journey_message
from tests.conftest import (
    ROOT,
    database_url,
    free_port,
    group_members,
    holding_commit,
    kill_group,
    kill_outside_hand_off,
    start_beat,
    start_redis,
    start_worker,
    stop_worker,
    wait_for_log,
    wait_until,
    worker_log,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="stops workers inside PostgreSQL transactions and reads results with psycopg",
    ),
]

CUSTOMERS = 3000
SPREAD_SECONDS = 20  # the timers fall due one slice after another over this long
HOLDOUT_PERCENT = 10


def definition(campaign_id: int) -> dict:
    return {
        "trigger": {"type": "api"},
        "holdout_percent": HOLDOUT_PERCENT,
        "start": "wait",
        "steps": {
            "wait": {"type": "delay", "duration": "1h", "next": "uk"},
            "uk": {"type": "condition", "rules": {"attribute": "country", "op": "eq",
                                                  "value": "GB"},
                   "yes": "mail", "no": "tag"},
            "mail": {"type": "send", "campaign": campaign_id, "next": "tag"},
            "tag": {"type": "update_attribute", "attribute": "journey", "value": "done",
                    "next": "end"},
            "end": {"type": "exit"},
        },
    }  # fmt: skip


def build(customers: int = CUSTOMERS) -> None:
    """The workspace, its customers (one in three in GB), the journey's message and the journey,
    and every customer enrolled and waiting in its delay, in the database Django points at."""
    workspace = Workspace.objects.create(slug=f"faults-{uuid.uuid4().hex[:6]}", name="Faults")
    countries = ("GB", "DE", "FR")
    Customer.objects.bulk_create(
        [
            Customer(workspace=workspace, email=f"c{i}@example.com", country=countries[i % 3])
            for i in range(customers)
        ],
        batch_size=5000,
    )
    campaign = journey_message(workspace)
    journey = services.journey_create(
        workspace=workspace, name="Faults", definition=definition(campaign.pk)
    )
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    ids = list(Customer.objects.filter(workspace=workspace).values_list("pk", flat=True))
    for start in range(0, len(ids), 1000):
        with transaction.atomic():
            engine.enrol(
                version=journey.version, entrants=[(c, {}) for c in ids[start : start + 1000]]
            )


def build_in_subprocess(url: str) -> None:
    """build(), migrations first, against the database at `url` (not this process's)."""
    env = {**os.environ, "DATABASE_URL": url, "MARKETING_AI_ENV": "test"}
    run = {"cwd": ROOT, "env": env, "check": True, "timeout": 180}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], stdout=subprocess.DEVNULL, **run
    )
    code = (
        "import django; django.setup();"
        " from tests.campaigns.journeys.test_faults import build; build()"
    )
    subprocess.run([sys.executable, "-c", code], **run)


def stuck_in(url: str) -> int:
    """engine.stuck() as a process pointed at `url` answers it."""
    code = (
        "import django; django.setup();"
        " from campaigns.journeys import engine; print(engine.stuck())"
    )
    env = {**os.environ, "DATABASE_URL": url, "MARKETING_AI_ENV": "test"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(done.stdout.split()[-1])


def query(url: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as db:
        cursor = db.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def finished(url: str) -> int:
    """Enrolments finished so far; 0 while the database is down."""
    try:
        return query(url, "SELECT count(*) FROM campaigns_enrolment WHERE state = 'finished'")[0][0]
    except psycopg.OperationalError:
        return 0


def advancing(url: str) -> bool:
    """Whether a worker is inside a journey transaction (timers claimed, steps being run)."""
    try:
        rows = query(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            " AND query ~ 'campaigns_journeytimer|campaigns_enrolment'",
        )
    except psycopg.OperationalError:
        return False
    return rows[0][0] > 0


def stop_mid_advance(worker, url: str) -> None:
    """Stops (SIGSTOP) the worker's process group while one of its processes is inside a journey
    transaction, and not between the send ledger's COMMIT and the "." (tests.conftest
    holding_commit); the caller kills it or cuts its database, then lets it go on (SIGCONT)."""
    port = urlsplit(url).port or 5432
    for _ in range(200):
        wait_until(lambda: advancing(url), timeout=30, interval=0.005)
        os.killpg(worker.pid, signal.SIGSTOP)
        if advancing(url) and not holding_commit(group_members(worker.pid), port):
            return
        os.killpg(worker.pid, signal.SIGCONT)
    pytest.fail("the worker was never caught inside a journey transaction")


def fall_due(url: str) -> None:
    """Every timer falls due within the next SPREAD_SECONDS, a slice at a time."""
    query(
        url,
        "UPDATE campaigns_journeytimer"
        " SET due_at = now() + (enrolment_id %% %s) * interval '1 second'",
        [SPREAD_SECONDS],
    )


def done(url: str, sink) -> bool:
    """Every enrolment finished and every message of the ledger settled and at the sink."""
    try:
        (unfinished, unsent, sent), = query(
            url,
            "SELECT (SELECT count(*) FROM campaigns_enrolment WHERE finished_at IS NULL),"
            " (SELECT count(*) FROM campaigns_message WHERE state IN ('queued', 'sending')),"
            " (SELECT count(*) FROM campaigns_message WHERE state = 'sent')",
        )  # fmt: skip
    except psycopg.OperationalError:
        return False
    return unfinished == 0 and unsent == 0 and sink.count() >= sent


def assert_exactly_once(url: str, sink) -> None:
    enrolments = query(
        url,
        "SELECT e.id, e.state, e.holdout, c.email, c.country, c.attributes->>'journey'"
        " FROM campaigns_enrolment e JOIN crm_customer c ON c.id = e.customer_id",
    )
    assert len(enrolments) == CUSTOMERS
    states = Counter(state for _, state, *_ in enrolments)
    assert states == {"finished": CUSTOMERS}, states
    assert all(tag == "done" for *_, tag in enrolments), "the update step ran for everyone"

    twice = query(
        url,
        "SELECT enrolment_id, step, count(*) FROM campaigns_enrolmentstep"
        " GROUP BY enrolment_id, step HAVING count(*) > 1 LIMIT 20",
    )
    assert not twice, f"steps run twice: {twice}"
    history = {}
    for enrolment_id, steps in query(
        url,
        "SELECT enrolment_id, array_agg(step ORDER BY step) FROM campaigns_enrolmentstep"
        " GROUP BY enrolment_id",
    ):
        history[enrolment_id] = steps
    for enrolment_id, _, _, _, country, _ in enrolments:
        path = (
            ["end", "mail", "tag", "uk", "wait"]
            if country == "GB"
            else ["end", "tag", "uk", "wait"]
        )
        assert history.get(enrolment_id) == path, (enrolment_id, history.get(enrolment_id))

    ledger = query(url, "SELECT enrolment_id, step, state, address FROM campaigns_message")
    in_ledger = Counter((enrolment_id, step) for enrolment_id, step, _, _ in ledger)
    assert max(in_ledger.values()) == 1, "one ledger row per enrolment and step"
    through = {e for e, _, _, _, country, _ in enrolments if country == "GB"}
    assert {e for e, _ in in_ledger} == through
    expected = {email for e, _, holdout, email, country, _ in enrolments
                if country == "GB" and not holdout}  # fmt: skip
    held = {email for e, _, holdout, email, country, _ in enrolments if country == "GB" and holdout}
    assert len(expected) > CUSTOMERS / 3 * 0.8 and held
    assert Counter(state for _, _, state, _ in ledger) == {"sent": len(expected),
                                                          "skipped": len(held)}  # fmt: skip

    received = sink.received()
    duplicates = {address: n for address, n in received.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} recipients got more than one message"
    lost = expected - set(received)
    assert not lost, f"{len(lost)} recipients got nothing: {sorted(lost)[:10]}"
    assert not set(received) & held, "the holdout got messages"
    assert set(received) == expected

    assert query(url, "SELECT count(*) FROM campaigns_journeytimer") == [(0,)]
    assert stuck_in(url) == 0


class Platform:
    """Its own Redis server, Celery beat and a worker (main process + 2 pool processes) on the
    database at `url`, and an SMTP sink; journeys tick twice a second."""

    def __init__(self, sink, name: str, url: str) -> None:
        self.url = url
        self.redis_port = free_port()
        self.redis = start_redis(self.redis_port)
        self.env = {
            "DATABASE_URL": url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "EMAIL_URL": sink.url,
            "JOURNEY_TICK_SECONDS": "0.5",
            "CAMPAIGN_SWEEP_SECONDS": "1",
            "CAMPAIGN_CLAIM_LEASE_SECONDS": "3",
            "CAMPAIGN_RETRY_BASE_SECONDS": "0.2",
            "CAMPAIGN_RETRY_MAX_SECONDS": "1",
            "CAMPAIGN_CHUNK": "25",
        }
        self.name = f"{name}-{uuid.uuid4().hex[:6]}"
        self.beat = start_beat(self.name, self.env)
        self.worker = self.start_worker()

    @property
    def log(self):
        return worker_log(self.name)

    def start_worker(self):
        before = self.log.stat().st_size if self.log.exists() else 0
        worker = start_worker("default,sends", self.name, self.env, concurrency=2)
        wait_for_log(self.log, " ready.", after=before, timeout=60)
        return worker

    def kill_worker(self) -> None:
        """SIGKILL for the whole worker in the middle of moving enrolments on."""
        stop_mid_advance(self.worker, self.url)
        kill_outside_hand_off(self.worker, urlsplit(self.url).port or 5432)

    def stop(self) -> None:
        if self.worker.poll() is None:
            kill_group(self.worker)
        stop_worker(self.beat)
        self.redis.kill()


def test_worker_killed_twice_while_timers_fire_every_step_runs_once(sink_factory):
    sink = sink_factory()
    build()
    url = database_url(connection.settings_dict)
    platform = Platform(sink, "journey-kill", url)
    try:
        fall_due(url)
        for share in (0.2, 0.5):
            wait_until(lambda s=share: finished(url) >= CUSTOMERS * s, timeout=60, interval=0.02)
            platform.kill_worker()
            assert finished(url) < CUSTOMERS, "the kill came while timers fired"
            platform.worker = platform.start_worker()
        wait_until(lambda: done(url, sink), timeout=120, interval=0.2)
        assert_exactly_once(url, sink)
    finally:
        platform.stop()


def test_redis_restarted_empty_while_timers_fire_every_step_runs_once(sink_factory):
    sink = sink_factory()
    build()
    url = database_url(connection.settings_dict)
    platform = Platform(sink, "journey-redis", url)
    try:
        fall_due(url)
        wait_until(lambda: finished(url) >= CUSTOMERS * 0.3, timeout=60, interval=0.02)
        before = platform.log.stat().st_size
        platform.redis.kill()
        platform.redis.wait(10)
        # The outage is one the worker lived through: it lost its broker connection.
        wait_for_log(platform.log, "Connection to broker lost", after=before, timeout=30)
        platform.redis = start_redis(platform.redis_port)  # empty: queued tasks are gone
        assert finished(url) < CUSTOMERS, "the restart came while timers fired"
        wait_until(lambda: done(url, sink), timeout=120, interval=0.2)
        assert_exactly_once(url, sink)
    finally:
        platform.stop()


def test_postgres_restarted_while_timers_fire_every_step_runs_once(sink_factory, own_postgres):
    sink = sink_factory()
    build_in_subprocess(own_postgres.url)
    platform = Platform(sink, "journey-pg", own_postgres.url)
    try:
        fall_due(own_postgres.url)
        wait_until(lambda: finished(own_postgres.url) >= CUSTOMERS * 0.3, timeout=60, interval=0.02)
        # The database goes while the worker is inside a journey transaction: rolled back.
        stop_mid_advance(platform.worker, own_postgres.url)
        own_postgres.stop()
        os.killpg(platform.worker.pid, signal.SIGCONT)
        own_postgres.start()
        assert finished(own_postgres.url) < CUSTOMERS, "the restart came while timers fired"
        wait_until(lambda: done(own_postgres.url, sink), timeout=120, interval=0.2)
        assert_exactly_once(own_postgres.url, sink)
    finally:
        platform.stop()
