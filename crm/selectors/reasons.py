"""Scores' reasons as sentences a marketer reads: what the fact is, which way it moved the score
and by how much ("no returns: churn risk up 3 points"). One place words every kind of score, so
the customer page, the API's `explanation` and the privacy export say the same thing.

The reasons themselves stay data (CustomerScore.reasons, written by each model's scoring); this
only reads them. Sizes are in the score's own terms: percentage points of a probability for churn
and uplift, the shop's currency for lifetime value, hours for the best send hour.
"""

import math
from collections.abc import Callable

from django.db.models import Q

from crm.models import SegmentMembership

# The behaviour features every order-based model shares (crm.services.churn.FEATURES), each as a
# phrase of its value. Kept here rather than imported: selectors sit below services, and the
# churn service loads numpy.
_FEATURE_PHRASES: dict[str, Callable[[float], str]] = {
    "recency_days": lambda v: f"last order {_count(v, 'day')} ago",
    "tenure_days": lambda v: f"first order {_count(v, 'day')} ago",
    "orders": lambda v: _count(v, "order", none="no orders yet"),
    "orders_90d": lambda v: _count(v, "order", none="no orders") + " in the last 90 days",
    "spend": lambda v: f"spent {_money(v)} in all",
    "spend_90d": lambda v: f"spent {_money(v)} in the last 90 days",
    "avg_order_value": lambda v: f"average order {_money(v)}",
    "returns": lambda v: _count(v, "return", none="no returns"),
    "products": lambda v: _count(v, "different product", none="no products"),
}
_UNKNOWN = {
    "recency_days": "never bought",
    "tenure_days": "never bought",
    "avg_order_value": "no order value yet",
}


def _count(value: float, noun: str, *, none: str | None = None) -> str:
    n = round(float(value))
    if n == 0 and none is not None:
        return none
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _money(value: float) -> str:
    return f"{float(value):,.2f}"


def _number(value) -> float | None:
    """A finite float, or None for anything else (a reason is data: it may hold null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fact(feature: str, value) -> str:
    """The feature's value as a phrase ("7 orders"), or `feature = value` for one not known."""
    number = _number(value)
    if feature in _FEATURE_PHRASES:
        if number is None:
            return _UNKNOWN.get(feature, f"{feature.replace('_', ' ')} unknown")
        return _FEATURE_PHRASES[feature](number)
    label = feature.replace("_", " ")
    return f"{label} {value}" if value is not None else label


def _points(delta: float) -> str:
    """A change of a probability in percentage points, signed: "up 3.2 points"."""
    size = abs(delta) * 100
    shown = f"{size:.1f}" if size < 10 else f"{size:.0f}"
    if shown in ("0.0", "0"):
        return "barely moved"
    return f"{'up' if delta > 0 else 'down'} {shown} point{'' if shown == '1.0' else 's'}"


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _items(reasons) -> list[dict]:
    return [r for r in reasons or [] if isinstance(r, dict) and isinstance(r.get("feature"), str)]


def _churn(value: float, reasons) -> list[str]:
    # Contributions are LightGBM's in log-odds: the size shown is how far the risk would fall
    # without this one (the risk now against the risk with its contribution taken out).
    out = []
    for r in _items(reasons):
        c = _number(r.get("contribution"))
        if c is None:
            out.append(_fact(r["feature"], r.get("value")))
            continue
        without = _sigmoid(_logit(value) - c)
        out.append(f"{_fact(r['feature'], r.get('value'))}: churn risk {_points(value - without)}")
    return out


def _uplift(goal: str) -> Callable[[float, list], list[str]]:
    def word(value: float, reasons) -> list[str]:
        # Contributions are already in response-rate units, against the average customer.
        out = []
        for r in _items(reasons):
            c = _number(r.get("contribution"))
            fact = _fact(r["feature"], r.get("value"))
            out.append(fact if c is None else f"{fact}: message's effect on {goal} {_points(c)}")
        return out

    return word


def _outcome(goal: str, sent: bool) -> Callable[[float, list], list[str]]:
    def word(value: float, reasons) -> list[str]:
        return [f"chance of {goal} {'if sent' if sent else 'if not sent'}: {value * 100:.1f}%"]

    return word


def _clv(value: float, reasons) -> list[str]:
    facts = {r["feature"]: _number(r.get("value")) for r in _items(reasons)}
    out = []
    purchases, order_value = facts.get("expected_purchases"), facts.get("expected_order_value")
    if purchases is not None and order_value is not None:
        out.append(
            f"about {purchases:.1f} more purchases expected × {_money(order_value)} a purchase "
            f"= {_money(value)}"
        )
    out += _lifetime_facts(facts, "expected value")
    return out


def _p_alive(value: float, reasons) -> list[str]:
    facts = {r["feature"]: _number(r.get("value")) for r in _items(reasons)}
    return _lifetime_facts(facts, "chance still a customer")


# BG/NBD and Pareto/NBD (crm.services.clv) read repeat purchases as a faster buyer and a long
# silence since the last one as a buyer more likely gone; a quarter is where we call it long.
LONG_SILENCE_WEEKS = 13


def _lifetime_facts(facts: dict, what: str) -> list[str]:
    out = []
    repeat = facts.get("repeat_purchases")
    if repeat is not None:
        n = round(repeat)
        if n:
            out.append(f"{n:,} repeat purchase{'' if n == 1 else 's'}: {what} up")
        else:
            out.append(f"no repeat purchases: {what} down")
    weeks = facts.get("weeks_since_last")
    if weeks is not None:
        way = "down" if weeks >= LONG_SILENCE_WEEKS else "up"
        ago = _count(weeks, "week")
        out.append(f"last purchase {ago} ago: {what} {way}")
    return out


_ACTIONS = {
    "clicks_at_hour": "click",
    "conversions_at_hour": "purchase",
    "opens_at_hour": "open",
}


def _best_hour(value: float, reasons) -> list[str]:
    items = _items(reasons)
    facts = {r["feature"]: r.get("value") for r in items if "value" in r}
    zone = facts.get("time_zone") if isinstance(facts.get("time_zone"), str) else ""
    out = [f"best hour {round(value):02d}:00{f' ({zone})' if zone else ''}"]
    for r in items:
        action = _ACTIONS.get(r["feature"])
        count, hour = _number(r.get("count")), _number(r.get("hour"))
        if action and count is not None and hour is not None:
            n = round(count)
            out.append(f"{n:,} {action}{'' if n == 1 else 's'} at {round(hour):02d}:00")
    if facts.get("thin") is True:
        out.append("little data of their own: mostly the workspace's usual hour")
    confidence = _number(facts.get("confidence"))
    if confidence is not None:
        out.append(f"confidence {confidence * 100:.0f}%")
    return out


_KINDS: dict[str, Callable[[float, list], list[str]]] = {
    "churn_risk": _churn,
    "clv_12m": _clv,
    "p_alive": _p_alive,
    "best_hour": _best_hour,
}
UPLIFT_PREFIX = "uplift."


def _worder(kind: str) -> Callable[[float, list], list[str]] | None:
    if kind in _KINDS:
        return _KINDS[kind]
    if kind.startswith(UPLIFT_PREFIX):
        goal = kind.removeprefix(UPLIFT_PREFIX)
        if goal.endswith(".if_sent"):
            return _outcome(goal.removesuffix(".if_sent"), True)
        if goal.endswith(".if_not"):
            return _outcome(goal.removesuffix(".if_not"), False)
        return _uplift(goal)
    return None


def _generic(value: float, reasons) -> list[str]:
    out = []
    for r in _items(reasons):
        c = _number(r.get("contribution"))
        fact = _fact(r["feature"], r.get("value"))
        out.append(fact if c is None else f"{fact}: score {'+' if c >= 0 else ''}{c:.3g}")
    return out


def reason_sentences(*, kind: str, value, reasons) -> list[str]:
    """`reasons` of a score of `kind` with `value` (CustomerScore's fields) as sentences, most
    important first as the model stored them; [] when nothing is recorded. Kinds not known here
    get their features and contributions as they are."""
    number = _number(value)
    if number is None:
        return []
    worder = _worder(kind) or _generic
    return worder(number, reasons)


def explanation(*, kind: str, value, reasons) -> str:
    """reason_sentences joined into one line ("" for none): the API's and exports' field."""
    return "; ".join(reason_sentences(kind=kind, value=value, reasons=reasons))


# The RFM groups (marketing_ai.ml.segment.rfm.GROUPS) in words: recency and frequency/spend are
# quintile scores 1-5.
RFM_GROUPS = {
    "Champions": "bought recently, often and for much",
    "Loyal": "buys often and for much, not the most recent",
    "Potential loyalists": "bought recently, a few times",
    "New": "bought recently for the first time or little",
    "Needs attention": "a middling time since the last order, bought a few times",
    "Cannot lose them": "bought often and for much, but long ago",
    "At risk": "bought a few times, long ago",
    "About to sleep": "a middling time since the last order, bought little",
    "Hibernating": "bought little, long ago",
}
RFM_PREFIX, CLUSTER_PREFIX = "RFM: ", "Cluster: "


def segment_sentence(*, name: str, description: str = "") -> str | None:
    """A model-made segment the customer is in (an RFM group, a behaviour cluster) as a
    sentence; None for a segment people made."""
    if name.startswith(RFM_PREFIX):
        group = name.removeprefix(RFM_PREFIX)
        meaning = RFM_GROUPS.get(group)
        return f"RFM group {group}" + (f": {meaning}" if meaning else "")
    if name.startswith(CLUSTER_PREFIX):
        # The clustering writes "Cluster 2 of 5: <words>. Median spend ..., ... orders, ...":
        # the words are the name already; the medians say what the group is like.
        cluster = name.removeprefix(CLUSTER_PREFIX)
        at = description.find("Median ")
        profile = description[at:].rstrip(".").replace("Median", "median", 1) if at >= 0 else ""
        return f"cluster {cluster}" + (f": {profile}" if profile else "")
    return None


def model_segments(*, customer_id: int) -> list[str]:
    """The model-made segments one customer is in (their RFM group, their cluster), worded."""
    rows = SegmentMembership.objects.filter(customer_id=customer_id).filter(
        Q(segment__name__startswith=RFM_PREFIX) | Q(segment__name__startswith=CLUSTER_PREFIX)
    )
    return [
        sentence
        for name, description in rows.values_list("segment__name", "segment__description")
        if (sentence := segment_sentence(name=name, description=description))
    ]
