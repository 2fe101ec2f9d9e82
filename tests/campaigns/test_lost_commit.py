"""The database lost between the "." of DATA and the hand-off COMMIT's answer (a restart, a
failover, a cut connection): the message went out, and must be recorded as sent and never sent
again — neither by this worker nor, once its claim goes stale, by the sweeper
(campaigns.unrecorded). The fault is real: the worker's own PostgreSQL backend is terminated
(pg_terminate_backend from a second connection) after its UPDATE and before its COMMIT."""

import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from campaigns import ledger, unrecorded
from campaigns.models import Message
from campaigns.services.delivery import deliver
from campaigns.services.sweep import sweep
from marketing_ai import kv
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import expected_recipients
from tests.conftest import database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the commit is pipelined with the '.' only on PostgreSQL (SQLite commits first)",
    ),
]


def terminate_own_backend() -> None:
    """Ends this process's database session from outside, as a server restart would."""
    pid = connection.connection.info.backend_pid
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(200):
            gone = not other.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            if gone:
                return
            time.sleep(0.01)
    raise AssertionError("the backend did not go")


@pytest.fixture
def database_lost_at(monkeypatch):
    """Terminates the worker's backend just before the COMMIT of the listed hand-offs (1-based)."""
    real = ledger._commit_then
    count = {"n": 0}
    cuts: set[int] = set()

    def commit_then(action):
        count["n"] += 1
        if count["n"] in cuts:
            terminate_own_backend()
        return real(action)

    monkeypatch.setattr(ledger, "_commit_then", commit_then)
    kv.client().delete(unrecorded.KEY)
    yield cuts
    kv.client().delete(unrecorded.KEY)


def deliver_as_workers_do(campaign, rounds: int = 20) -> None:
    """Delivery as the platform runs it: a task that fails leaves its connection for a new one;
    the sweeper (its lease run out at once here) releases what was claimed and not finished."""
    for _ in range(rounds):
        try:
            deliver(campaign_id=campaign.pk, budget_seconds=30)
        except Exception:  # noqa: BLE001  (a failed task; Celery closes its connection)
            connection.close()
        if not Message.objects.filter(campaign=campaign, state__in=("queued", "sending")).exists():
            return
        sweep()
        time.sleep(0.05)
    raise AssertionError("campaign did not finish")


def test_a_send_whose_commit_the_database_lost_is_recorded_and_never_repeated(
    workspace, sink_factory, smtp_settings, database_lost_at, settings
):
    sink = sink_factory()
    smtp_settings(sink)
    settings.CAMPAIGN_CLAIM_LEASE_SECONDS = 0
    campaign = make_campaign(workspace, make_audience(workspace, 6))
    launch_now(campaign)
    database_lost_at.update({2, 5})
    deliver_as_workers_do(campaign)

    received = sink.received()
    assert set(received) == expected_recipients(campaign)
    assert set(received.values()) == {1}, received
    assert set(Message.objects.filter(campaign=campaign).values_list("state", flat=True)) == {
        "sent"
    }
    assert not kv.client().hlen(unrecorded.KEY)
    # Long after, the sweeper finds no stale claim to release: nothing is sent again.
    assert sweep()["released"] == 0
    deliver_as_workers_do(campaign)
    assert sink.received() == received


def test_the_sweeper_records_a_noted_send_before_it_releases_stale_claims(workspace):
    """The worker could not record it (it died, or the database stayed away past its wait)."""
    campaign = make_campaign(workspace, make_audience(workspace, 2))
    launch_now(campaign)
    claim, ids = ledger.claim_due(campaign_id=campaign.pk, now=timezone.now(), limit=10)
    Message.objects.filter(pk__in=ids).update(claimed_at=timezone.now() - timedelta(hours=1))
    kv.client().delete(unrecorded.KEY)
    unrecorded.note(
        message_id=ids[0], claim=claim, sent_at=timezone.now(), address="a@x.test", provider_id="p"
    )
    swept = sweep()
    assert swept["recorded"] == 1 and swept["released"] == 1
    first, second = Message.objects.filter(pk__in=ids).order_by("pk")
    assert (first.state, first.address, first.provider_id) == ("sent", "a@x.test", "p")
    assert second.state == "queued"  # its worker died before the "."
    assert not kv.client().hlen(unrecorded.KEY)
