"""campaigns.services.forecast_events: the send ledger's messages per day become the forecast's
known events (crm reads them through the reader campaigns registers, never importing it)."""

from datetime import UTC, date, datetime

import pytest

from campaigns.models import Message
from campaigns.services.forecast_events import sends_per_day
from crm.services import forecasts
from tests.campaigns.factories import sent_campaign
from tests.crm.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_sends_per_day_and_per_week_are_the_forecasts_promotions(workspace):
    campaign = sent_campaign(workspace, n=6)
    rows = list(Message.objects.filter(campaign=campaign).order_by("pk"))
    days = [datetime(2025, 3, 3, 9, tzinfo=UTC)] * 2 + [datetime(2025, 3, 5, 9, tzinfo=UTC)] * 4
    for row, when in zip(rows, days, strict=True):
        Message.objects.filter(pk=row.pk).update(send_at=when)
    Message.objects.filter(pk=rows[0].pk).update(holdout=True)  # never sent: no promotion
    Message.objects.filter(pk=rows[1].pk).update(state=Message.State.SKIPPED)
    sent_campaign(WorkspaceFactory(slug="other", name="Other"), n=5)  # another workspace's

    assert sends_per_day(workspace.pk) == [(date(2025, 3, 5), 4)]
    assert sends_per_day in forecasts._event_sources  # registered as campaigns loads
    weekly = forecasts.planned_sends(workspace.pk, "week")
    assert weekly["ds"].dt.date.tolist() == [date(2025, 3, 3)] and weekly["promotion"].tolist() == [
        4.0
    ]
    daily = forecasts.planned_sends(workspace.pk, "day")
    assert daily["ds"].dt.date.tolist() == [date(2025, 3, 5)]


def test_no_sends_no_events(workspace):
    assert forecasts.planned_sends(workspace.pk, "week") is None
