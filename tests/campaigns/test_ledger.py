"""campaigns.ledger: the send ledger's state changes, each a conditional UPDATE; a worker whose
claim went stale (another worker took the row) cannot mark it sent or reach the point of no
return. (tests/campaigns/test_exactly_once.py holds the rule under killed workers.)"""

from datetime import timedelta

import pytest
from django.db.models import Q
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


def test_rows_put_back_together_go_back_only_while_the_claim_is_ours(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 3))
    launch_now(campaign)
    claim, ids = ledger.claim_due(campaign_id=campaign.pk, now=timezone.now(), limit=10)
    ledger.finish_unsent(message_id=ids[2], claim=claim, state="skipped", reason="x")
    later = timezone.now() + timedelta(seconds=30)
    when = {ids[0]: later, ids[1]: later + timedelta(seconds=1), ids[2]: later}
    assert ledger.retry_many(claim=claim, retry_at=when, reason="waits", refund_attempt=True) == 2
    rows = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
    assert [rows[i].state for i in ids] == ["queued", "queued", "skipped"]
    assert rows[ids[0]].send_at == later and rows[ids[1]].send_at == when[ids[1]]
    assert rows[ids[0]].attempts == 0 and rows[ids[0]].claim is None  # not an attempt
    # A stale claim puts nothing back.
    assert ledger.retry_many(claim=claim, retry_at=when, reason="waits") == 0


def test_postponing_moves_only_queued_rows_of_those_customers_due_before(workspace):
    from crm.models import Customer

    campaign = make_campaign(workspace, make_audience(workspace, 4))
    launch_now(campaign)
    rows = list(Message.objects.filter(campaign=campaign).order_by("id"))
    held, _ = ledger.claim_due(campaign_id=campaign.pk, now=timezone.now(), limit=1)  # rows[0]
    until = timezone.now() + timedelta(seconds=60)
    Message.objects.filter(pk=rows[3].pk).update(send_at=until + timedelta(seconds=5))
    them = Customer.objects.filter(pk__in=[m.customer_id for m in rows[:2] + rows[3:]])
    moved = ledger.postpone(
        campaign_id=campaign.pk, where=Q(customer__in=them), until=until, reason="waits"
    )
    assert moved == 1  # rows[1]: rows[0] is claimed, rows[2] not theirs, rows[3] already later
    after = {m.pk: m for m in Message.objects.filter(campaign=campaign)}
    assert after[rows[1].pk].send_at == until and after[rows[1].pk].state == "queued"
    assert after[rows[0].pk].state == "sending" and after[rows[0].pk].claim == held
    assert after[rows[2].pk].send_at == rows[2].send_at
    assert after[rows[3].pk].send_at == until + timedelta(seconds=5)
