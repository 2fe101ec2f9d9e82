"""An uplift model's training data, read from the send ledger.

For a workspace and goal (the campaigns' `goal_event`), every broadcast launched with a random
holdout gives rows: treated = the message was sent, control = it was held out. A campaign that
targeted by uplift sent to its selection on purpose, so only its random control share (sent
whatever the score, decision["targeting_control"]) counts as treated there; its holdout was
drawn before targeting and stays a random control.

The outcome is what results.attribute_conversions records (the first goal event within the
attribution window after the send, or after a click; for a holdout from the moment it would
have been sent), taken only once the window has closed, so no row is counted as "did not
convert" while it still could.

The features are each row's own as they were at its send time (sent_at, or send_at for a
holdout): the churn model's order features (crm.services.churn.FEATURES, same definitions)
computed from orders placed strictly before that moment and not cancelled by then (an order
cancelled after the send counts for it; its products are the one feature that does not).
Customers who had never bought get NaN recency, tenure and order value (LightGBM reads NaN as
missing), not a made-up number.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db.models import Min, Q
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.results import attribute_conversions
from crm.models import Order, OrderLine, Workspace
from crm.services.churn import FEATURES

DAY = np.timedelta64(1, "D")


def _moments(values) -> np.ndarray:
    """Aware datetimes -> naive UTC datetime64[us] (comparable, sortable)."""
    return np.array(
        [v.astimezone(UTC).replace(tzinfo=None) for v in values], dtype="datetime64[us]"
    ).reshape(-1)


class _History:
    """One customer's orders as sorted arrays, so features at any moment are a few binary
    searches: sales (placed orders), all placed rows (orders and returns, for spend), returns,
    and the first purchase of each product."""

    __slots__ = ("sales", "all", "spend", "returns", "products")

    def __init__(self) -> None:
        self.sales: list = []
        self.all: list = []
        self.spend: list = []
        self.returns: list = []
        self.products: list = []

    def freeze(self) -> None:
        self.sales = np.sort(_moments(self.sales))
        placed = _moments(self.all)
        order = np.argsort(placed, kind="stable")
        self.all = placed[order]
        self.spend = np.concatenate([[0.0], np.cumsum(np.asarray(self.spend, float)[order])])
        self.returns = np.sort(_moments(self.returns))
        self.products = np.sort(_moments(self.products))


def _histories(workspace_id: int, before: datetime) -> dict[int, _History]:
    placed = Order.objects.filter(
        workspace_id=workspace_id,
        status=Order.Status.PLACED,
        placed_at__lt=before,
        customer__isnull=False,
    )
    histories: dict[int, _History] = {}
    for customer_id, placed_at, kind, total in placed.values_list(
        "customer_id", "placed_at", "kind", "total"
    ).iterator(chunk_size=5000):
        h = histories.setdefault(customer_id, _History())
        h.all.append(placed_at)
        h.spend.append(float(total or 0))
        if kind == Order.Kind.ORDER:
            h.sales.append(placed_at)
        elif kind == Order.Kind.RETURN:
            h.returns.append(placed_at)
    firsts = (
        OrderLine.objects.filter(
            order__workspace_id=workspace_id,
            order__kind=Order.Kind.ORDER,
            order__status=Order.Status.PLACED,
            order__placed_at__lt=before,
            order__customer__isnull=False,
        )
        .values("order__customer_id", "product_id")
        .annotate(first=Min("order__placed_at"))
        .values_list("order__customer_id", "first")
        .order_by()
    )
    for customer_id, first in firsts.iterator(chunk_size=5000):
        histories.setdefault(customer_id, _History()).products.append(first)
    for h in histories.values():
        h.freeze()
    return histories


def _cancelled_later(workspace_id: int, before: datetime) -> dict[int, list[tuple]]:
    """Orders placed before `before` and cancelled since: they were live at any moment between
    their placing and their cancellation, so rows in between must count them (a cancellation
    recorded after a send must not change that send's features). Those cancelled at an unknown
    time stay out, as the order features have always left them."""
    rows = Order.objects.filter(
        workspace_id=workspace_id,
        status=Order.Status.CANCELLED,
        cancelled_at__isnull=False,
        placed_at__lt=before,
        customer__isnull=False,
    ).values_list("customer_id", "placed_at", "cancelled_at", "kind", "total")
    out: dict[int, list[tuple]] = {}
    for customer_id, placed_at, cancelled_at, kind, total in rows.iterator(chunk_size=5000):
        placed, cancelled = _moments([placed_at, cancelled_at])
        out.setdefault(customer_id, []).append((placed, cancelled, kind, float(total or 0)))
    return out


def features_at(workspace_id: int, customer_ids, moments: list[datetime]) -> np.ndarray:
    """(rows, len(FEATURES)): row i holds customer_ids[i]'s features from their orders placed
    strictly before moments[i] (aware datetimes), nothing later. The definitions are
    crm.services.churn.customer_features' (days are whole days, spend counts returns' totals)."""
    customer_ids = np.asarray(customer_ids, dtype=np.int64)
    if len(customer_ids) != len(moments):
        raise ValueError("one moment per row")
    out = np.zeros((len(customer_ids), len(FEATURES)), dtype=np.float64)
    if not len(customer_ids):
        return out
    times = _moments(moments)
    histories = _histories(workspace_id, max(moments))
    later = _cancelled_later(workspace_id, max(moments))
    empty = _History()
    empty.freeze()
    for i, (customer_id, t) in enumerate(zip(customer_ids.tolist(), times, strict=True)):
        h = histories.get(customer_id, empty)
        since_90 = t - 90 * DAY
        n = int(np.searchsorted(h.sales, t, side="left"))
        n_90 = n - int(np.searchsorted(h.sales, since_90, side="left"))
        k = int(np.searchsorted(h.all, t, side="left"))
        spend = float(h.spend[k])
        spend_90 = spend - float(h.spend[int(np.searchsorted(h.all, since_90, side="left"))])
        returns = int(np.searchsorted(h.returns, t, side="left"))
        first = h.sales[0] if n else None
        last = h.sales[n - 1] if n else None
        for placed, cancelled, kind, total in later.get(customer_id, ()):
            if not placed < t <= cancelled:
                continue  # not yet placed, or already cancelled, at this row's moment
            spend += total
            spend_90 += total if placed >= since_90 else 0.0
            if kind == Order.Kind.RETURN:
                returns += 1
            elif kind == Order.Kind.ORDER:
                n, n_90 = n + 1, n_90 + (placed >= since_90)
                first = placed if first is None or placed < first else first
                last = placed if last is None or placed > last else last
        if n:
            recency = float((t - last) // DAY)
            tenure = float((t - first) // DAY)
            average = spend / n
        else:
            recency = tenure = average = np.nan
        out[i] = (
            recency,
            tenure,
            n,
            n_90,
            spend,
            spend_90,
            average,
            returns,
            int(np.searchsorted(h.products, t, side="left")),
        )
    return out


@dataclass
class TrainingSet:
    """Rows of randomised sends: features, treated (1 sent / 0 held out), outcome (1 converted),
    and where each came from."""

    X: np.ndarray
    treated: np.ndarray
    y: np.ndarray
    message_ids: np.ndarray
    customer_ids: np.ndarray
    campaign_ids: np.ndarray
    moments: list[datetime]

    def counts(self) -> dict:
        t = self.treated == 1
        return {
            "rows": int(len(self.y)),
            "rows_treated": int(t.sum()),
            "rows_control": int((~t).sum()),
            "conversions_treated": int(self.y[t].sum()),
            "conversions_control": int(self.y[~t].sum()),
            "campaigns": int(len(set(self.campaign_ids.tolist()))),
            "customers": int(len(set(self.customer_ids.tolist()))),
        }


def training_campaigns(workspace: Workspace, goal: str):
    """The workspace's launched broadcasts for `goal` that kept a random holdout (cancelled ones
    left out: what they sent before the cancel is not a random share)."""
    return (
        Campaign.objects.filter(
            workspace=workspace,
            kind=Campaign.Kind.BROADCAST,
            goal_event=goal,
            holdout_percent__gt=0,
            launched_at__isnull=False,
        )
        .exclude(status__in=(Campaign.Status.DRAFT, Campaign.Status.CANCELLED))
        .order_by("pk")
    )


def training_set(*, workspace: Workspace, goal: str, now: datetime | None = None) -> TrainingSet:
    """The training rows of `goal` in `workspace` (see the module's docstring); `now` (default
    the current time) decides which attribution windows have closed."""
    now = now or timezone.now()
    rows = []
    for campaign in training_campaigns(workspace, goal):
        attribute_conversions(campaign=campaign)
        window = timedelta(days=campaign.attribution_days)
        targeted = campaign.targeting != Campaign.Targeting.EVERYONE
        messages = (
            Message.objects.filter(
                campaign=campaign, enrolment_id__isnull=True, customer__erased_at__isnull=True
            )
            .filter(Q(holdout=True) | Q(state=Message.State.SENT))
            .values_list(
                "pk",
                "customer_id",
                "holdout",
                "sent_at",
                "send_at",
                "clicked_at",
                "converted_at",
                "decision",
            )
        )
        for (
            pk,
            customer_id,
            holdout,
            sent_at,
            send_at,
            clicked_at,
            converted_at,
            decision,
        ) in messages:
            if not holdout and targeted and not (decision or {}).get("targeting_control"):
                continue  # sent because the model chose them: not a random assignment
            ref = sent_at or send_at
            if (clicked_at or ref) + window > now:
                continue  # still inside its attribution window
            rows.append(
                (pk, customer_id, campaign.pk, 0 if holdout else 1, converted_at is not None, ref)
            )
    rows.sort()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    customers = np.array([r[1] for r in rows], dtype=np.int64)
    moments = [r[5] for r in rows]
    return TrainingSet(
        X=features_at(workspace.pk, customers, moments),
        treated=np.array([r[3] for r in rows], dtype=np.int64),
        y=np.array([int(r[4]) for r in rows], dtype=np.int64),
        message_ids=ids,
        customer_ids=customers,
        campaign_ids=np.array([r[2] for r in rows], dtype=np.int64),
        moments=moments,
    )
