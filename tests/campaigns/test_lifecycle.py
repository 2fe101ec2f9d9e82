"""campaigns.services.lifecycle: launch (refused while incomplete), pause, resume, cancel and
resend to the failed, and the one rule for a campaign being done (the launch run, delivery
and the sweeper all use it)."""

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services import lifecycle
from campaigns.services.delivery import deliver
from campaigns.services.recipients import build_ledger
from campaigns.services.sweep import sweep
from campaigns.tasks import launch
from crm.models import Consent, Segment
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done
from workers.models import TaskRun
from workers.services import task_run_start

pytestmark = pytest.mark.django_db


def scheduled(workspace, n: int, **fields) -> Campaign:
    name = fields.setdefault("name", "Spring")
    segment = make_audience(workspace, n, name=name, prefix=name)
    campaign = make_campaign(workspace, segment, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    campaign.refresh_from_db()
    return campaign


def settle_all(campaign: Campaign) -> None:
    """Every waiting row of the ledger handed off, as delivery would leave them."""
    Message.objects.filter(campaign=campaign, state__in=lifecycle.PENDING).update(
        state=Message.State.SENT, sent_at=timezone.now()
    )


def status_of(campaign: Campaign) -> str:
    campaign.refresh_from_db()
    return campaign.status


# --- done -----------------------------------------------------------------------------------


def test_a_campaign_is_done_once_its_written_ledger_has_no_waiting_row(workspace):
    campaign = scheduled(workspace, 3)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # no ledger yet
    build_ledger(campaign=campaign)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # three rows queued
    Message.objects.filter(campaign=campaign).update(state=Message.State.SENDING)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # claimed, in flight
    settle_all(campaign)
    assert lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and campaign.finished_at is not None
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)  # once


def test_an_empty_ledger_is_done_only_for_the_run_that_just_wrote_it(workspace):
    campaign = scheduled(workspace, 0)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)
    assert lifecycle.campaign_finish_if_done(campaign_id=campaign.pk, ledger_written=True)
    assert status_of(campaign) == Campaign.Status.SENT


def test_the_ab_rest_waiting_for_a_winner_keeps_the_campaign_going(workspace):
    campaign = scheduled(workspace, 40, variants=2, ab_test_percent=20, seed=1)
    build_ledger(campaign=campaign)
    Message.objects.filter(campaign=campaign, ab_test=True).update(state=Message.State.SENT)
    assert Message.objects.filter(campaign=campaign, variant__isnull=True).exists()
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk)


@pytest.mark.parametrize("status", ["draft", "paused", "cancelled"])
def test_only_a_scheduled_or_sending_campaign_is_marked_sent(workspace, status):
    campaign = scheduled(workspace, 2)
    build_ledger(campaign=campaign)
    settle_all(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    assert not lifecycle.campaign_finish_if_done(campaign_id=campaign.pk, ledger_written=True)
    assert status_of(campaign) == status


def run_launch(campaign: Campaign) -> TaskRun:
    """The launch run in this process (the test's transaction holds its queued message back)."""
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    run = task_run_start(
        task=launch, params={"campaign": campaign.pk}, workspace=campaign.workspace
    )
    launch.apply(args=[str(run.pk)])
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    return run


def test_the_launch_run_finishes_a_campaign_with_nobody_or_only_skipped_rows(workspace):
    nobody = make_campaign(
        workspace,
        Segment.objects.create(workspace=workspace, name="none", kind="static"),
        name="nobody",
    )
    run_launch(nobody)
    assert status_of(nobody) == Campaign.Status.SENT and not nobody.messages.exists()
    segment = make_audience(workspace, 3, prefix="gone", name="gone")
    skipped = make_campaign(workspace, segment, name="skipped")
    Consent.objects.filter(customer__in=segment.memberships.values("customer")).update(
        status="unsubscribed"
    )
    run_launch(skipped)
    assert status_of(skipped) == Campaign.Status.SENT
    assert set(skipped.messages.values_list("reason", flat=True)) == {"no consent"}


def test_delivery_and_the_sweeper_finish_by_the_same_rule(workspace):
    delivered = scheduled(workspace, 2, name="delivered")
    swept = scheduled(workspace, 2, name="swept")
    for campaign in (delivered, swept):
        build_ledger(campaign=campaign)
    assert sweep()["finished"] == []  # rows due: not done
    for campaign in (delivered, swept):
        settle_all(campaign)
    deliver(campaign_id=delivered.pk, budget_seconds=5)
    assert status_of(delivered) == Campaign.Status.SENT
    assert sweep()["finished"] == [swept.pk] and status_of(swept) == Campaign.Status.SENT


# --- launch, pause, resume, cancel, resend ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sends_in_this_process")
def test_launch_refuses_incomplete_campaigns(workspace):
    campaign = Campaign.objects.create(workspace=workspace, name="empty", timing="local")
    with pytest.raises(lifecycle.CampaignError) as error:
        lifecycle.campaign_launch(campaign=campaign)
    assert {"include_segments", "variants", "local_time"} <= set(error.value.errors)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sends_in_this_process")
def test_pause_resume_cancel_and_resend_failed(workspace, sink_factory, smtp_settings):
    sink = sink_factory()
    smtp_settings(sink)
    campaign = make_campaign(workspace, make_audience(workspace, 30))
    launch_now(campaign)
    lifecycle.campaign_pause(campaign=campaign)
    deliver(campaign_id=campaign.pk, budget_seconds=5)
    assert sink.count() == 0
    with pytest.raises(lifecycle.CampaignError):
        lifecycle.campaign_pause(campaign=campaign)
    Message.objects.filter(campaign=campaign, customer__email="person0@example.com").update(
        state="failed", reason="simulated outage"
    )
    lifecycle.campaign_resume(campaign=campaign)
    deliver_until_done(campaign)
    assert sink.count() == 29
    assert lifecycle.campaign_resend_failed(campaign=campaign) == 1
    deliver_until_done(campaign)
    assert set(sink.received().values()) == {1} and sink.count() == 30
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    with pytest.raises(lifecycle.CampaignError):
        lifecycle.campaign_cancel(campaign=campaign)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sends_in_this_process")
def test_cancel_skips_what_was_not_sent(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 12))
    launch_now(campaign)
    assert lifecycle.campaign_cancel(campaign=campaign) == 12
    assert set(Message.objects.filter(campaign=campaign).values_list("reason", flat=True)) == {
        "cancelled"
    }
