"""campaigns.protection.breaker: a broadcast whose early rates pass the thresholds pauses."""

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignPause, Message, SenderProtection
from campaigns.protection import breaker
from campaigns.services.lifecycle import campaign_resume
from tests.campaigns.protection.test_rates import refuse_at_rcpt, report, sent_campaign

pytestmark = pytest.mark.django_db


def campaign_with(workspace, n: int, refused: int, complaints: int = 0) -> Campaign:
    campaign = sent_campaign(workspace, n=n)
    rows = list(Message.objects.filter(campaign=campaign).order_by("id"))
    Message.objects.filter(campaign=campaign).update(claimed_at=timezone.now())
    refuse_at_rcpt(rows[:refused])
    for m in rows[refused : refused + complaints]:
        report(m, "complaint")
    return campaign


def test_hard_bounces_past_the_threshold_pause_the_campaign_with_the_reason(workspace):
    campaign = campaign_with(workspace, 200, refused=11)  # 5.5% > 5%
    pause = breaker.breaker_check(campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert pause.reason == "hard bounces 5.5% of 200 attempted (more than 5%)"
    assert pause.figures["hard_bounces"] == 11
    shown = breaker.pause_shown(campaign)
    assert shown["by"] == "circuit breaker" and shown["reason"] == pause.reason
    # Checked again (another worker): no second pause.
    assert breaker.breaker_check(campaign=campaign) is None
    assert CampaignPause.objects.filter(campaign=campaign).count() == 1


def test_below_the_threshold_or_before_enough_sends_nothing_happens(workspace):
    under = campaign_with(workspace, 200, refused=10)  # 5.0%: not more than 5%
    assert breaker.breaker_check(campaign=under) is None
    early = campaign_with(workspace, 100, refused=50)  # 100 attempted < 200
    assert breaker.breaker_check(campaign=early) is None
    for c in (under, early):
        c.refresh_from_db()
        assert c.status == Campaign.Status.SENDING


def test_complaints_past_their_threshold_pause(workspace):
    SenderProtection.objects.create(workspace=workspace, min_sends=100, complaint_percent=0.5)
    campaign = campaign_with(workspace, 150, refused=0, complaints=1)  # 0.67%
    pause = breaker.breaker_check(campaign=campaign)
    assert pause.reason.startswith("complaints 0.67% of 150 sent (more than 0.5%)")


def test_a_workspace_can_switch_the_breaker_off(workspace):
    SenderProtection.objects.create(workspace=workspace, breaker_on=False)
    campaign = campaign_with(workspace, 200, refused=100)
    assert breaker.breaker_check(campaign=campaign) is None


def test_after_a_resume_it_judges_only_what_is_sent_since(workspace):
    campaign = campaign_with(workspace, 200, refused=20)
    assert breaker.breaker_check(campaign=campaign)
    campaign_resume(campaign=campaign)
    assert CampaignPause.objects.get(campaign=campaign).lifted_at is not None
    assert breaker.pause_shown(campaign) is None
    # The same early figures no longer count; the new window is empty.
    assert breaker.breaker_check(campaign=campaign) is None
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_a_manual_pause_shows_no_breaker_reason(workspace):
    campaign = campaign_with(workspace, 20, refused=0)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    campaign.refresh_from_db()
    assert breaker.pause_shown(campaign) is None


def test_the_guard_checks_every_few_sends_and_stops_once_paused(workspace):
    campaign = campaign_with(workspace, 200, refused=20)
    guard = breaker.Guard(campaign, every=5, min_seconds=0)
    assert [guard.after_send() for _ in range(4)] == [False] * 4
    assert guard.after_send() is True
    assert guard.after_send() is True
