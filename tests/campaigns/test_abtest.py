"""campaigns.services.abtest: the A/B test's winner is decided and sent to the rest."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.abtest import ab_decide_due
from campaigns.services.recipients import build_ledger
from tests.campaigns.factories import make_audience, make_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_ab_test_sends_the_winner_to_the_rest(workspace):
    campaign = make_campaign(
        workspace,
        make_audience(workspace, 300),
        variants=2,
        ab_test_percent=30,
        ab_metric="click",
        ab_wait_hours=0,
        seed=9,
    )
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    counts = build_ledger(campaign=campaign)
    assert 50 < counts["ab_test"] < 130
    rest = Message.objects.filter(campaign=campaign, ab_test=False, holdout=False)
    assert not rest.filter(variant__isnull=False).exists()
    test = Message.objects.filter(campaign=campaign, ab_test=True)
    test.update(state="sent", sent_at=timezone.now() - timedelta(minutes=5))
    b = campaign.variants.get(name="B")
    test.filter(variant=b).update(clicked_at=timezone.now())
    assert ab_decide_due(campaign_id=campaign.pk, now=timezone.now())
    campaign.refresh_from_db()
    assert campaign.winner == b and campaign.ab_result["winner"] == "B"
    assert set(rest.values_list("variant", flat=True)) == {b.pk}
