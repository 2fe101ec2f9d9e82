"""campaigns.services.results: conversions attributed within the window, and the lift over the
holdout with its 95% interval."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Message
from campaigns.services.results import campaign_stats
from crm.models import Event
from tests.campaigns.factories import sent_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_conversions_and_lift_over_the_holdout(workspace):
    campaign = sent_campaign(workspace, n=600, holdout_percent=30, seed=5, attribution_days=3)
    treated = list(Message.objects.filter(campaign=campaign, holdout=False, state="sent"))
    control = list(Message.objects.filter(campaign=campaign, holdout=True))
    now = timezone.now()
    buyers = treated[: len(treated) // 5] + control[: len(control) // 10]
    late = treated[-3:]  # bought after the window: not a conversion
    Event.objects.bulk_create(
        [
            Event(
                workspace=workspace,
                customer_id=m.customer_id,
                type="purchase",
                occurred_at=now,
                properties={"total": "20.00"},
            )
            for m in buyers
        ]
        + [
            Event(
                workspace=workspace,
                customer_id=m.customer_id,
                type="purchase",
                occurred_at=now + timedelta(days=5),
                properties={"total": "9.00"},
            )
            for m in late
        ]
    )
    Message.objects.filter(pk__in=[m.pk for m in control]).update(send_at=now - timedelta(hours=1))
    stats = campaign_stats(campaign=campaign)
    t_rate = (len(treated) // 5) / len(treated)
    c_rate = (len(control) // 10) / len(control)
    assert stats["treated"]["conversions"]["rate"] == pytest.approx(t_rate)
    assert stats["holdout"]["conversions"]["rate"] == pytest.approx(c_rate)
    lift = stats["lift"]
    assert lift["conversion_rate"] == pytest.approx(t_rate - c_rate)
    low, high = lift["conversion_rate_ci95"]
    assert low < t_rate - c_rate < high and low > 0  # a real 10-point lift on 600 is significant
    assert stats["treated"]["revenue"] == pytest.approx(20.0 * (len(treated) // 5))
    assert stats["variants"][0]["conversions"]["count"] == len(treated) // 5
    assert campaign_stats(campaign=campaign)["lift"] == lift  # attribution is idempotent
