"""campaigns.services.revenue_plan: a draft campaign's planned recipients x the workspace's
recent revenue per message, set against the total revenue forecast (with its band) for the send
week, in words on the campaign's page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.revenue_plan import campaign_revenue_plan
from crm.models import Segment
from tests.campaigns.factories import make_audience
from tests.crm.factories import WorkspaceFactory
from tests.crm.forecast_rows import forecast_version, monday_of
from workers.models import ModelVersion

pytestmark = pytest.mark.django_db


def sent(campaign: Campaign, segment: Segment, *, days: float, revenue: str, **extra) -> None:
    now = timezone.now()
    Message.objects.bulk_create(
        Message(
            campaign=campaign,
            customer_id=m.customer_id,
            state=Message.State.SENT,
            send_at=now - timedelta(days=days),
            sent_at=now - timedelta(days=days),
            revenue=Decimal(revenue),
            **extra,
        )
        for m in segment.memberships.all()
    )


@pytest.fixture
def draft(workspace):
    """A draft sending next week to 50 subscribed customers less 10 excluded, and 10 who
    unsubscribed, with a 10% holdout: 36 planned. Earlier sends: 120 messages in the last 90
    days that brought 100 in all (0.83 a message); older, held-out and another workspace's
    messages do not count."""
    buyers = make_audience(workspace, 40, prefix="buyer", name="Buyers")
    quiet = make_audience(workspace, 80, prefix="quiet", name="Quiet")
    earlier = Campaign.objects.create(workspace=workspace, name="Earlier", status="sent")
    sent(earlier, buyers, days=10, revenue="2.50")
    sent(earlier, quiet, days=20, revenue="0")
    older = Campaign.objects.create(workspace=workspace, name="Older", status="sent")
    sent(older, buyers, days=120, revenue="100")
    sent(older, quiet, days=5, revenue="100", holdout=True)
    other = WorkspaceFactory(slug="other", name="Other")
    elsewhere = Campaign.objects.create(workspace=other, name="Theirs", status="sent")
    sent(elsewhere, make_audience(other, 5, prefix="x"), days=5, revenue="1000")

    audience = make_audience(workspace, 50, prefix="fan", name="Fans")
    gone = make_audience(workspace, 10, consent="unsubscribed", prefix="gone", name="Gone")
    excluded = Segment.objects.create(workspace=workspace, name="Staff", kind="static")
    for member in audience.memberships.order_by("customer_id")[:10]:
        excluded.memberships.create(customer_id=member.customer_id)
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="Next week",
        timing=Campaign.Timing.AT,
        send_at=timezone.now() + timedelta(days=7),
        holdout_percent=10,
    )
    campaign.include_segments.add(audience, gone)
    campaign.exclude_segments.add(excluded)
    return campaign


def send_week(campaign: Campaign):
    return monday_of(timezone.localtime(campaign.send_at).date())


def test_planned_revenue_against_the_weeks_forecast(workspace, draft):
    week = send_week(draft)
    forecast_version(
        workspace,
        {},
        revenue_weeks={week: (1000.0, 800.0, 1250.0), week + timedelta(days=7): (5, 4, 6)},
    )
    plan = campaign_revenue_plan(campaign=draft)
    assert (plan.recipients, plan.sent_lately, plan.week) == (36, 120, week)
    assert plan.per_message == pytest.approx(100 / 120)
    assert plan.planned == pytest.approx(30.0)
    assert plan.forecast == (1000.0, 800.0, 1250.0)
    assert plan.share() == pytest.approx((0.03, 0.024, 0.0375))
    words = " ".join(plan.sentences())
    assert "About 36 recipients after the 10% holdout × 0.83 revenue per message" in words
    assert "120 messages) ≈ 30" in words
    assert f"week of {week:%d %b %Y}, all sales: 1,000 (80% band 800 to 1,250)" in words
    assert "about 3.0% of that week's revenue (2.4% to 3.8% across the band)" in words


def test_it_says_what_it_cannot_tell(workspace, draft):
    words = " ".join(campaign_revenue_plan(campaign=draft).sentences())
    assert "no revenue forecast yet" in words
    week = send_week(draft)
    forecast_version(workspace, {}, revenue_weeks={week - timedelta(days=14): (1, 1, 1)})
    words = " ".join(campaign_revenue_plan(campaign=draft).sentences())
    assert f"does not cover the week of {week:%d %b %Y}" in words
    # A shadow version's weeks are not the forecast.
    ModelVersion.objects.filter(workspace=workspace).update(status="retired")
    forecast_version(workspace, {}, revenue_weeks={week: (9, 8, 10)}, status="shadow")
    assert "no revenue forecast yet" in " ".join(campaign_revenue_plan(campaign=draft).sentences())
    Message.objects.filter(campaign__workspace=workspace, revenue=Decimal("0")).delete()
    words = " ".join(campaign_revenue_plan(campaign=draft).sentences())
    assert "Too few messages were sent in the last 90 days (40, under 100)" in words


def test_the_campaign_page_shows_it_before_launch(workspace, draft, admin_client):
    week = send_week(draft)
    forecast_version(workspace, {}, revenue_weeks={week: (1000.0, 800.0, 1250.0)})
    url = f"/admin/campaigns/campaign/{draft.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "Planned volume against the revenue forecast" in page
    assert "about 3.0% of that week&#x27;s revenue" in page
    Campaign.objects.filter(pk=draft.pk).update(status=Campaign.Status.SCHEDULED)
    assert "Planned volume" not in admin_client.get(url).content.decode()
