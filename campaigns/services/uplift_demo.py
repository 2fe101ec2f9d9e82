"""A simulated campaign with a 50% holdout whose effect depends on the customer, so the uplift
model has something to find (`manage.py demo_uplift`, and the tests of the whole path).

Nothing is e-mailed: the ledger is written by the launch's own code (build_ledger: the same
holdout draw), then its queued rows are marked sent at `sent_at` directly. Conversions are
`purchase` events within the attribution window, the rows attribution reads. Who converts
depends on the customer's order features at the send (uplift_data.features_at), by a rule the
model does not see:

- lapsing regulars (2+ orders, last 30 to 180 days ago) are persuadable: the message adds
  PERSUADABLE_GAIN to their chance;
- frequent recent buyers (3+ orders in 90 days) are do-not-disturbs: it takes DISTURB_LOSS off;
- recent buyers are sure things (a high chance either way), the rest lost causes.
"""

from datetime import datetime, timedelta

import numpy as np
from django.db import transaction
from django.db.models import Q

from campaigns.models import Campaign, Message, Variant
from campaigns.services.recipients import build_ledger
from campaigns.services.uplift_data import FEATURES, features_at
from campaigns.services.variants import variant_approve
from crm.models import Event, Segment, Workspace

PERSUADABLE_GAIN = 0.25
DISTURB_LOSS = 0.12
BASE, RECENT_BASE = 0.03, 0.15


def true_effect(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chance without the message, chance with it) per row of features."""
    col = {name: X[:, i] for i, name in enumerate(FEATURES)}
    with np.errstate(invalid="ignore"):
        recency = np.nan_to_num(col["recency_days"], nan=10_000)
        recent = recency < 30
        lapsing = (recency >= 30) & (recency <= 180) & (col["orders"] >= 2)
        frequent = col["orders_90d"] >= 3
    held = np.where(recent, RECENT_BASE, BASE) + np.where(frequent, DISTURB_LOSS, 0)
    sent = held + np.where(lapsing, PERSUADABLE_GAIN, 0) - np.where(frequent, DISTURB_LOSS, 0)
    return np.clip(held, 0, 1), np.clip(sent, 0, 1)


@transaction.atomic
def demo_uplift_campaign(
    *,
    workspace: Workspace,
    segment: Segment,
    sent_at: datetime,
    name: str = "Demo: uplift (simulated, 50% holdout)",
    seed: int = 7,
    attribution_days: int = 5,
) -> Campaign:
    """The sent campaign `name` to `segment` with its simulated conversions (see the module);
    returns the existing one unchanged if `workspace` has a campaign of that name."""
    existing = Campaign.objects.filter(workspace=workspace, name=name).first()
    if existing is not None:
        return existing
    campaign = Campaign.objects.create(
        workspace=workspace,
        name=name,
        holdout_percent=50,
        goal_event="purchase",
        attribution_days=attribution_days,
        seed=seed,
        launched_at=sent_at,
    )
    campaign.include_segments.add(segment)
    variant = Variant.objects.create(
        campaign=campaign,
        name="A",
        subject="We saved something for you, {{ customer.first_name }}",
        body_html="<p>Hello {{ customer.first_name }}, come back and see what is new.</p>",
    )
    variant_approve(variant=variant)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    build_ledger(campaign=campaign)
    rows = Message.objects.filter(campaign=campaign)
    rows.filter(state=Message.State.QUEUED).update(
        state=Message.State.SENT, sent_at=sent_at, send_at=sent_at
    )
    rows.filter(holdout=True).update(send_at=sent_at)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, finished_at=sent_at)
    measured = list(
        rows.filter(Q(state=Message.State.SENT) | Q(holdout=True)).values_list(
            "customer_id", "holdout"
        )
    )
    ids = np.array([pk for pk, _ in measured], dtype=np.int64)
    held = np.array([h for _, h in measured], dtype=bool)
    X = features_at(workspace.pk, ids, [sent_at] * len(ids))
    p_held, p_sent = true_effect(X)
    rng = np.random.default_rng(seed)
    converts = rng.random(len(ids)) < np.where(held, p_held, p_sent)
    delays = rng.uniform(1, attribution_days * 24 - 1, len(ids))
    # Written as history, straight to the table: a simulated past purchase is not a live event
    # for journeys or segment refreshes to react to now.
    Event.objects.bulk_create(
        [
            Event(
                workspace=workspace,
                customer_id=int(pk),
                type="purchase",
                occurred_at=sent_at + timedelta(hours=float(hours)),
                properties={"total": "25.00", "simulated": True},
                idempotency_key=f"demo-uplift:{campaign.pk}:{pk}",
            )
            for pk, hours in zip(ids[converts], delays[converts], strict=True)
        ],
        ignore_conflicts=True,
        batch_size=2000,
    )
    campaign.refresh_from_db()
    return campaign
