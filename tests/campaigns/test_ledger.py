"""campaigns.ledger: the send ledger's state changes, each a conditional UPDATE; a worker whose
claim went stale (another worker took the row) cannot mark it sent or reach the point of no
return. (tests/campaigns/test_exactly_once.py holds the rule under killed workers.)"""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import ledger
from campaigns.models import Message
from tests.campaigns.factories import launch_now, make_audience, make_campaign

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]


def test_a_worker_that_lost_its_claim_cannot_send(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 3))
    launch_now(campaign)
    claim, ids = ledger.claim_due(campaign_id=campaign.pk, now=timezone.now(), limit=10)
    assert len(ids) == 3
    # Its claim went stale; another worker took the row.
    ledger.release_stale(older_than=timezone.now() + timedelta(seconds=1))
    other, taken = ledger.claim_due(campaign_id=campaign.pk, now=timezone.now(), limit=10)
    called = []
    with pytest.raises(ledger.LostClaim):
        ledger.hand_off(
            message_id=ids[0],
            claim=claim,
            sent_at=timezone.now(),
            address="x",
            provider_id="",
            point_of_no_return=lambda: called.append(1),
        )
    assert not called
    ledger.hand_off(
        message_id=ids[0],
        claim=other,
        sent_at=timezone.now(),
        address="x",
        provider_id="",
        point_of_no_return=lambda: called.append(1),
    )
    assert called == [1] and Message.objects.get(pk=ids[0]).state == "sent"
