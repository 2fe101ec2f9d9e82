"""campaigns.services.uplift_data: the training rows an uplift model learns from, read from the
send ledger: who was sent and who held out, whether they converted in the window, and their
features as they were at the send (nothing later: the leakage test)."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.uplift_data import FEATURES, features_at, training_set
from crm import services
from crm.models import Event
from crm.services.churn import customer_features
from tests.campaigns.uplift_world import send_time, sent_campaign, shop
from tests.crm.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_rows_are_the_sent_and_the_held_out_with_their_conversions(workspace):
    segment, kinds = shop(workspace, n=200)
    campaign = sent_campaign(workspace, segment)
    data = training_set(workspace=workspace, goal="purchase")
    ledger = Message.objects.filter(campaign=campaign)
    assert data.counts()["rows_treated"] == ledger.filter(state="sent").count() > 60
    assert data.counts()["rows_control"] == ledger.filter(holdout=True).count() > 60
    assert len(data.y) == 200
    converted = set(
        Event.objects.filter(
            workspace=workspace, type="purchase", occurred_at__gte=send_time()
        ).values_list("customer_id", flat=True)
    )
    assert set(data.customer_ids[data.y == 1].tolist()) == converted
    held = set(ledger.filter(holdout=True).values_list("customer_id", flat=True))
    assert set(data.customer_ids[data.treated == 0].tolist()) == held
    # another goal has no rows
    assert len(training_set(workspace=workspace, goal="signup").y) == 0


def test_nothing_after_the_send_changes_a_rows_features(workspace):
    segment, kinds = shop(workspace, n=40)
    sent_campaign(workspace, segment)
    before = training_set(workspace=workspace, goal="purchase")
    buyer, other = int(before.customer_ids[0]), int(before.customer_ids[1])
    at = send_time()
    # A big order an hour after the send (its purchase event is a conversion, as it should be),
    # events of every kind after it, and a return a day later.
    assert not services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "big-after",
                "customer": buyer,
                "placed_at": (at + timedelta(hours=1)).isoformat(),
                "lines": [{"sku": "A", "quantity": 50, "unit_price": 100}],
            },
            {
                "external_id": "return-after",
                "customer": other,
                "kind": "return",
                "placed_at": (at + timedelta(days=1)).isoformat(),
                "lines": [{"sku": "A", "quantity": 1, "unit_price": 20}],
            },
        ],
    ).errors
    services.event_bulk_create(
        workspace=workspace,
        rows=[
            {"customer": str(buyer), "type": "view", "occurred_at": at.isoformat()},
            {"customer": str(other), "type": "click", "occurred_at": at.isoformat()},
        ],
    )
    after = training_set(workspace=workspace, goal="purchase")
    assert np.array_equal(after.message_ids, before.message_ids)
    assert np.array_equal(after.X, before.X, equal_nan=True)
    row = int(np.flatnonzero(after.customer_ids == buyer)[0])
    assert after.y[row] == 1

    # ... while an order a minute before the send is seen.
    services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "just-before",
                "customer": buyer,
                "placed_at": (at - timedelta(minutes=1)).isoformat(),
                "lines": [{"sku": "A", "quantity": 1, "unit_price": 999}],
            }
        ],
    )
    seen = training_set(workspace=workspace, goal="purchase")
    assert seen.X[row, FEATURES.index("recency_days")] == 0
    assert seen.X[row, FEATURES.index("spend")] == before.X[row, FEATURES.index("spend")] + 999

    # ... and cancelling it now, after the send, changes nothing of that send's row: the order
    # was live when the message went (the outside tester's case: recency 9 -> 232).
    services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "just-before",
                "customer": buyer,
                "placed_at": (at - timedelta(minutes=1)).isoformat(),
                "status": "cancelled",
                "cancelled_at": timezone.now().isoformat(),
                "lines": [{"sku": "A", "quantity": 1, "unit_price": 999}],
            }
        ],
    )
    cancelled_later = training_set(workspace=workspace, goal="purchase")
    assert np.array_equal(cancelled_later.X, seen.X, equal_nan=True)


def test_features_are_the_churn_models_at_one_moment(workspace):
    segment, _ = shop(workspace, n=24)
    at = send_time()
    ids, expected = customer_features(workspace, at)
    ours = features_at(workspace.pk, ids, [at] * len(ids))
    assert np.allclose(ours, expected)
    never = features_at(workspace.pk, [ids.max() + 10_000], [at])[0]
    assert np.isnan(never[FEATURES.index("recency_days")]) and never[FEATURES.index("orders")] == 0


def test_each_row_is_measured_at_its_own_send_time(workspace):
    segment, kinds = shop(workspace, n=8)
    at = send_time()
    pk = next(pk for pk, kind in kinds.items() if kind == "recent")  # one order 10 days before
    rows = features_at(
        workspace.pk, [pk, pk, pk], [at, at - timedelta(days=5), at - timedelta(days=11)]
    )
    recency = rows[:, FEATURES.index("recency_days")]
    assert recency[0] == 10 and recency[1] == 5 and np.isnan(recency[2])


def test_a_window_still_open_gives_no_rows(workspace):
    segment, _ = shop(workspace, n=20)
    campaign = sent_campaign(workspace, segment)
    Message.objects.filter(campaign=campaign).update(
        sent_at=timezone.now() - timedelta(days=2), send_at=timezone.now() - timedelta(days=2)
    )
    assert len(training_set(workspace=workspace, goal="purchase").y) == 0
    assert (
        len(
            training_set(
                workspace=workspace, goal="purchase", now=timezone.now() + timedelta(days=4)
            ).y
        )
        == 20
    )


def test_a_campaign_without_holdout_or_cancelled_gives_no_rows(workspace):
    segment, _ = shop(workspace, n=20)
    campaign = sent_campaign(workspace, segment)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)
    assert len(training_set(workspace=workspace, goal="purchase").y) == 0
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, holdout_percent=0)
    assert len(training_set(workspace=workspace, goal="purchase").y) == 0


def test_a_targeted_campaign_counts_only_its_random_control_share_as_sent(workspace):
    segment, _ = shop(workspace, n=60)
    campaign = sent_campaign(workspace, segment)
    Campaign.objects.filter(pk=campaign.pk).update(targeting=Campaign.Targeting.UPLIFT_POSITIVE)
    sent = list(Message.objects.filter(campaign=campaign, state="sent").order_by("pk"))
    control = sent[::3]
    for m in sent:
        m.decision = {
            "uplift": 0.1,
            "targeted": m not in control,
            "targeting_control": m in control,
        }
    Message.objects.bulk_update(sent, ["decision"])
    data = training_set(workspace=workspace, goal="purchase")
    assert sorted(data.message_ids[data.treated == 1].tolist()) == sorted(m.pk for m in control)
    assert (
        data.counts()["rows_control"]
        == Message.objects.filter(campaign=campaign, holdout=True).count()
    )


def test_another_workspaces_messages_are_never_rows(workspace):
    segment, _ = shop(workspace, n=40)
    ours = sent_campaign(workspace, segment)
    other = WorkspaceFactory(slug="other")
    other_segment, _ = shop(other, n=40, prefix="them")
    theirs = sent_campaign(other, other_segment)
    data = training_set(workspace=workspace, goal="purchase")
    assert set(data.campaign_ids.tolist()) == {ours.pk}
    assert not set(data.message_ids.tolist()) & set(
        Message.objects.filter(campaign=theirs).values_list("pk", flat=True)
    )
    assert set(data.customer_ids.tolist()) <= set(workspace.customers.values_list("pk", flat=True))


def test_erased_customers_leave_the_training_data(workspace):
    segment, _ = shop(workspace, n=20)
    sent_campaign(workspace, segment)
    data = training_set(workspace=workspace, goal="purchase")
    gone = workspace.customers.get(pk=int(data.customer_ids[0]))
    services.privacy_erase(customer=gone, actor="test")
    assert (
        int(data.customer_ids[0])
        not in training_set(workspace=workspace, goal="purchase").customer_ids
    )
