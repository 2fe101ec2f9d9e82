"""The circuit breaker end to end: a real Celery worker and beat deliver a campaign to the SMTP
sink (tests/smtp_sink.py answers 550 5.1.1 at RCPT for every bounce… address); the campaign
pauses by itself with the reason, sends nothing more, and staff's resume finishes it with every
other recipient holding exactly one message."""

import time
import uuid

import pytest

from campaigns.models import Campaign, CampaignPause, Message, SenderProtection
from campaigns.protection import breaker
from campaigns.services.lifecycle import campaign_resume
from campaigns.services.recipients import build_ledger
from crm.models import Customer
from tests.campaigns.factories import make_audience, make_campaign
from tests.campaigns.helpers import wait_for_status
from tests.conftest import (
    kill_group,
    start_beat,
    start_worker,
    stop_worker,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


def status(campaign: Campaign) -> str:
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()


def test_bounces_pause_the_campaign_by_itself_and_resume_finishes_it(
    workspace, sink_factory, own_redis
):
    # own_redis points this process's Celery at the test's Redis too: resume's nudge must reach
    # the worker below, not the session's live worker (which sends elsewhere, not to the sink).
    sink = sink_factory()
    SenderProtection.objects.create(workspace=workspace, min_sends=40)
    campaign = make_campaign(workspace, make_audience(workspace, 300))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    build_ledger(campaign=campaign)
    # The first twenty addresses sent to are dead (the list's old part goes first).
    first = Message.objects.filter(campaign=campaign).order_by("send_at", "id")[:20]
    dead = [m.customer_id for m in first]
    for pk in dead:
        Customer.objects.filter(pk=pk).update(email=f"bounce{pk}@example.com")
    env = {
        "REDIS_URL": own_redis.url,
        "EMAIL_URL": sink.url,
        "CAMPAIGN_SWEEP_SECONDS": "1",
        "CAMPAIGN_CHUNK": "25",
    }
    name = f"breaker-{uuid.uuid4().hex[:6]}"
    beat, worker = start_beat(name, env), start_worker("default,sends", name, env, concurrency=2)
    try:
        wait_for_status(campaign, Campaign.Status.PAUSED, timeout=120)
        pause = CampaignPause.objects.filter(campaign=campaign).get()
        assert pause.reason.startswith("hard bounces ") and "more than 5%" in pause.reason
        assert breaker.pause_shown(campaign)["reason"] == pause.reason
        time.sleep(1.5)  # what was in flight lands
        held = sink.count()
        time.sleep(2.5)
        assert sink.count() == held, "sends went on after the pause"
        assert held < 200, "the breaker stopped the campaign early"
        assert Message.objects.filter(campaign=campaign, state="queued").count() >= 100

        # Resumed, the breaker counts afresh (the sweeper queues the deliveries); should a
        # dead address left in flight trip it again, staff resume once more.
        for _ in range(3):
            campaign_resume(campaign=campaign)
            wait_until(lambda: status(campaign) in ("sent", "paused"), timeout=120)
            if status(campaign) == "sent":
                break
    finally:
        kill_group(worker)
        stop_worker(beat)
    received = sink.received()
    living = set(
        Message.objects.filter(campaign=campaign)
        .exclude(customer_id__in=dead)
        .values_list("customer__email", flat=True)
    )
    assert set(received) == living and set(received.values()) == {1}
    assert Message.objects.filter(campaign=campaign, state="failed").count() == len(dead)
    assert status(campaign) == "sent"
    assert not CampaignPause.objects.filter(campaign=campaign, lifted_at__isnull=True).exists()
