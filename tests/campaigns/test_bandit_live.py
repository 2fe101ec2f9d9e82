"""The beat-driven wave step with every part real: Celery beat and a worker (two pool processes)
as processes, a Redis server of the test's own, the database and an SMTP server. The bandit
campaign's first wave goes out, its clicks come in, beat's `bandit_waves` decides the next wave
after `wave_hours`, the worker sends it, and so on to the end: each recipient gets exactly one
message, each logged with the probability of its variant, and the later waves favour the
variant that earned the clicks."""

import uuid

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.recipients import build_ledger
from tests.campaigns.factories import make_audience, make_campaign
from tests.campaigns.helpers import expected_recipients, wait_for_status
from tests.conftest import free_port, start_beat, start_redis, start_worker, stop_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

WAVE_SECONDS = 6


def clicks_for_b(campaign: Campaign, wave: int) -> None:
    """Every sent message of B in `wave` clicked (what tracking records), none of A's."""
    Message.objects.filter(campaign=campaign, wave=wave, state="sent", variant__name="B").update(
        clicked_at=timezone.now()
    )


def wave_out(campaign: Campaign, wave: int) -> bool:
    rows = Message.objects.filter(campaign=campaign, wave=wave)
    return rows.exists() and not rows.exclude(state="sent").exists()


def test_beat_decides_each_wave_and_every_recipient_gets_one_message(workspace, sink_factory):
    sink = sink_factory()
    campaign = make_campaign(
        workspace,
        make_audience(workspace, 240),
        variants=2,
        seed=8,
        bandit="thompson",
        waves=3,
        wave_hours=WAVE_SECONDS / 3600,
        ab_metric="click",
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SCHEDULED, launched_at=timezone.now()
    )
    build_ledger(campaign=campaign)
    port = free_port()
    redis = start_redis(port)
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "EMAIL_URL": sink.url,
        "CAMPAIGN_SWEEP_SECONDS": "1",
        "BANDIT_WAVE_SECONDS": "1",
        "CAMPAIGN_CHUNK": "25",
    }
    name = f"bandit-{uuid.uuid4().hex[:6]}"
    beat = start_beat(name, env)
    worker = start_worker("default,sends", name, env, concurrency=2)
    try:
        for wave in (1, 2):
            wait_until(lambda w=wave: wave_out(campaign, w), timeout=120, interval=0.2)
            clicks_for_b(campaign, wave)
            last_sent = max(
                Message.objects.filter(campaign=campaign, wave=wave).values_list(
                    "sent_at", flat=True
                )
            )
            nxt = Message.objects.filter(campaign=campaign, wave=wave + 1)
            wait_until(
                lambda n=nxt: not n.filter(variant__isnull=True).exists(),
                timeout=120,
                interval=0.2,
            )
            campaign.refresh_from_db()
            record = campaign.ab_result["waves"][-1]
            assert record["wave"] == wave + 1
            # Decided by beat's task once the wave before had its wave_hours, not before.
            decided = timezone.datetime.fromisoformat(record["decided_at"])
            assert (decided - last_sent).total_seconds() >= WAVE_SECONDS
            assert record["probabilities"]["B"] > 0.9
        wait_for_status(campaign, Campaign.Status.SENT, timeout=120)
    finally:
        stop_worker(worker)
        stop_worker(beat)
        redis.kill()
    campaign.refresh_from_db()
    assert [w["wave"] for w in campaign.ab_result["waves"]] == [2, 3]  # once each
    received = sink.received()
    assert set(received) == expected_recipients(campaign)
    assert all(n == 1 for n in received.values())
    rows = Message.objects.filter(campaign=campaign, holdout=False).select_related("variant")
    assert not rows.filter(propensity__isnull=True).exists()
    later = [m for m in rows if m.wave > 1]
    assert sum(m.variant.name == "B" for m in later) > 0.85 * len(later)
    for m in rows:
        assert m.propensity == pytest.approx(m.decision["probabilities"][m.variant.name], abs=1e-6)
