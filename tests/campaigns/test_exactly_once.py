"""campaigns.ledger and campaigns.services.delivery: exactly once under faults, with every part
real: Celery workers and beat as processes, a Redis
server, the database, and an SMTP server (aiosmtpd) that logs every message it accepts.

A campaign's workers are killed with SIGKILL (the whole worker: main process and pool) in the
middle of sending, twice, while the server greylists 5% of recipients (451 at RCPT); another run
restarts Redis (without persistence, so every queued task is lost) in the middle. Each ends with
every recipient holding exactly one message.

One moment is stepped around: a pool process that has written the ledger's COMMIT but not yet
the "." of DATA (campaigns/ledger.py: two writes to two sockets cannot be one atomic step, so a
kill there loses that message; bench/handoff.py measures how rarely a random kill lands there).
On PostgreSQL the killer stops the worker's processes, and if one of them holds a corked COMMIT
it lets them run a moment and tries again; every other moment is fair game.
"""

import uuid

import pytest
from django.db import connection

from campaigns.models import Campaign, Message
from campaigns.services.recipients import build_ledger
from tests.campaigns.factories import make_audience, make_campaign
from tests.campaigns.helpers import expected_recipients, wait_for_status
from tests.conftest import (
    free_port,
    kill_group,
    start_beat,
    start_redis,
    start_worker,
    stop_worker,
    wait_for_log,
    wait_until,
    worker_log,
)
from tests.conftest import kill_outside_hand_off as shared_kill_outside_hand_off

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(420)]

AUDIENCE = 1200


def launched(workspace) -> Campaign:
    """A campaign whose ledger is written (as the launch task does) and waits for workers."""
    segment = make_audience(workspace, AUDIENCE)
    campaign = make_campaign(workspace, segment, holdout_percent=10, seed=7)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    build_ledger(campaign=campaign)
    return campaign


def environment(redis_url: str, sink) -> dict:
    return {
        "REDIS_URL": redis_url,
        "EMAIL_URL": sink.url,
        "CAMPAIGN_SWEEP_SECONDS": "1",
        "CAMPAIGN_CLAIM_LEASE_SECONDS": "3",
        "CAMPAIGN_RETRY_BASE_SECONDS": "0.2",
        "CAMPAIGN_RETRY_MAX_SECONDS": "1",
        "CAMPAIGN_CHUNK": "25",
    }


def kill_outside_hand_off(process) -> None:
    """The shared killer, given the test database's port (PostgreSQL over TCP; else at once)."""
    port = 0
    if connection.vendor == "postgresql":
        port = int(connection.settings_dict.get("PORT") or 5432)
    shared_kill_outside_hand_off(process, port)


def assert_exactly_once(campaign: Campaign, sink) -> None:
    expected = expected_recipients(campaign)
    received = sink.received()
    duplicates = {a: n for a, n in received.items() if n > 1}
    lost = expected - set(received)
    strangers = set(received) - expected
    assert not duplicates, f"{len(duplicates)} recipients got more than one message"
    rows = list(
        Message.objects.filter(campaign=campaign, address__in=lost).values(
            "address", "state", "attempts", "reason", "sent_at", "claimed_at"
        )
    )
    assert not lost, f"{len(lost)} recipients got nothing: {rows}"
    assert not strangers, f"messages went to {len(strangers)} addresses outside the audience"
    sent = Message.objects.filter(campaign=campaign, state=Message.State.SENT).count()
    assert sent == len(expected) > AUDIENCE * 0.8


class Platform:
    """Its own Redis server, Celery beat and a worker (main process + 2 pool processes)."""

    def __init__(self, sink, name: str) -> None:
        self.redis_port = free_port()
        self.redis = start_redis(self.redis_port)
        self.env = environment(f"redis://127.0.0.1:{self.redis_port}/0", sink)
        self.name = f"{name}-{uuid.uuid4().hex[:6]}"
        self.beat = start_beat(self.name, self.env)
        self.worker = self.start_worker()

    def start_worker(self):
        return start_worker("default,sends", self.name, self.env, concurrency=2)

    def stop(self) -> None:
        if self.worker.poll() is None:
            kill_group(self.worker)
        stop_worker(self.beat)
        self.redis.kill()


def test_workers_killed_twice_mid_campaign_send_everything_exactly_once(workspace, sink_factory):
    sink = sink_factory(fail_rate=0.05, fail_at="rcpt")
    campaign = launched(workspace)
    platform = Platform(sink, "kill")
    try:
        for share in (0.25, 0.6):
            target = AUDIENCE * 0.9 * share
            wait_until(lambda t=target: sink.count() >= t, timeout=120, interval=0.02)
            kill_outside_hand_off(platform.worker)
            platform.worker = platform.start_worker()
        wait_for_status(campaign, Campaign.Status.SENT, timeout=240)
        assert_exactly_once(campaign, sink)
        retried = Message.objects.filter(campaign=campaign, attempts__gt=1).count()
        assert retried > 0, "the greylisted recipients were retried"
    finally:
        platform.stop()


def test_redis_restart_mid_campaign_loses_and_duplicates_nothing(workspace, sink_factory):
    sink = sink_factory()
    campaign = launched(workspace)
    platform = Platform(sink, "redis")
    try:
        wait_until(lambda: sink.count() >= AUDIENCE * 0.3, timeout=120, interval=0.02)
        log = worker_log(platform.name)
        before = log.stat().st_size
        platform.redis.kill()
        platform.redis.wait(10)
        # The outage is one the worker lived through: it lost its broker connection.
        wait_for_log(log, "Connection to broker lost", after=before, timeout=30)
        platform.redis = start_redis(platform.redis_port)  # empty: queued tasks are gone
        wait_for_status(campaign, Campaign.Status.SENT, timeout=240)
        assert_exactly_once(campaign, sink)
    finally:
        platform.stop()
