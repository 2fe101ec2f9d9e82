"""A campaign's uplift results: how well the scores recorded at launch ranked who the message
changed (the observed Qini curve beside what the model predicted), and, for a campaign that
targeted by uplift, what the targeting earned.

Only random comparisons are used. The Qini curve compares the sent with the holdout, both
ranked by the score each row recorded at launch (decision["uplift"]); in a targeted campaign
the sent side is its random control share only (the targeted were chosen by that very score).
The model's prediction is the curve it implies: at the top n, the treated among them times the
mean predicted uplift of those n.

What the targeting earned is reported two ways. Per audience member (sent or not), three
random arms: the targeted arm (sent only if selected), the control share (all sent) and the
holdout (none): what choosing by score gained against sending to no one and to everyone. And
the message's effect on those the rule selected: the selected who were sent against the
held-out members it would have selected (the campaign's headline lift, campaign_stats).
"""

import numpy as np

from campaigns.models import Campaign, Message
from campaigns.services.results import TREATED, attribute_conversions
from marketing_ai.ml import experiment
from marketing_ai.ml.uplift import metrics

CURVE_POINTS = 101  # the curves are sampled at every 1% of the ranking


def _rate(hits: int, n: int) -> dict:
    low, high = experiment.wilson_interval(hits, n)
    return {"members": n, "conversions": hits, "rate": hits / n if n else None,
            "ci95": [low, high] if n else None}  # fmt: skip


def _difference(a: dict, b: dict) -> dict | None:
    if not a["members"] or not b["members"]:
        return None
    low, high = experiment.difference_interval(
        a["conversions"], a["members"], b["conversions"], b["members"]
    )
    return {"value": a["rate"] - b["rate"], "ci95": [low, high]}


def _sample(points: np.ndarray) -> list[float]:
    """The curve at every 1% of the ranking (points are at n = 0 ... N)."""
    at = np.linspace(0, len(points) - 1, CURVE_POINTS)
    return [round(float(v), 3) for v in np.interp(at, np.arange(len(points)), points)]


TOO_FEW = 20  # conversions among the sent and held-out rows ranked by score


def _finite(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def qini_observed(y: np.ndarray, treated: np.ndarray, score: np.ndarray) -> dict | None:
    """The observed Qini curve and coefficient (with a bootstrap 95% interval) of `score` on a
    randomised send, and the curve the scores predicted; None without both groups."""
    if len(y) < 2 or treated.all() or not treated.any():
        return None
    observed = metrics.qini_curve(y, treated, score)
    order = np.argsort(-score, kind="stable")
    n = np.arange(1, len(y) + 1)
    predicted = np.concatenate([[0.0], np.cumsum(treated[order]) * np.cumsum(score[order]) / n])
    coefficient = metrics.with_interval(
        metrics.qini_coefficient, y, treated, score, rounds=200, seed=0, normalise="perfect"
    )
    return {
        "rows": int(len(y)),
        "treated": int(treated.sum()),
        "control": int(len(y) - treated.sum()),
        "observed": _sample(observed),
        "predicted": _sample(predicted),
        "qini": round(coefficient.value, 4),
        # None where too few resamples had both groups and a defined value
        "qini_ci95": [_finite(coefficient.low), _finite(coefficient.high)],
    }


def uplift_results(*, campaign: Campaign, attribute: bool = True) -> dict | None:
    """The campaign's uplift section (module docstring), or None when its launch recorded no
    uplift scores (no active model for its goal then)."""
    if attribute:
        attribute_conversions(campaign=campaign)
    rows = list(
        Message.objects.filter(campaign=campaign, decision__has_key="uplift").values_list(
            "holdout", "state", "converted_at", "decision"
        )
    )
    if not rows:
        return None
    targeted = campaign.targeting != Campaign.Targeting.EVERYONE
    y, treated, score = [], [], []
    for holdout, state, converted_at, decision in rows:
        value = decision.get("uplift")
        if value is None:
            continue
        if holdout:
            arm = 0
        elif state == Message.State.SENT and (not targeted or decision.get("targeting_control")):
            arm = 1
        else:
            continue
        y.append(int(converted_at is not None))
        treated.append(arm)
        score.append(float(value))
    result = {
        "conversions": int(sum(y)),
        # below this a Qini or a rate difference is noise: the page says so instead of 0.000
        "too_few": sum(y) < TOO_FEW,
        "targeted": targeted,
        "rule": campaign.targeting,
        "scored": sum(1 for r in rows if r[3].get("uplift") is not None),
        "qini": qini_observed(np.array(y), np.array(treated), np.array(score)),
        "earned": _earned(rows) if targeted else None,
    }
    return result


def _earned(rows) -> dict:
    """Conversions per member of the three random arms, their differences, and the
    incremental conversions per message sent of the two sending arms."""
    arms = {"targeted": [0, 0, 0], "control_share": [0, 0, 0], "holdout": [0, 0, 0]}
    # The selected, sent (the control share's too: drawn at random, as the holdout is) vs held
    # out; counted as campaign_stats counts its headline lift.
    selected = {"sent": [0, 0], "held": [0, 0]}
    for holdout, state, converted_at, decision in rows:
        name = (
            "holdout"
            if holdout
            else "control_share"
            if decision.get("targeting_control")
            else "targeted"
        )
        hit = int(converted_at is not None)
        arm = arms[name]
        arm[0] += 1
        arm[1] += hit
        arm[2] += int(state != Message.State.SKIPPED)
        if decision.get("targeted") and (holdout or state in TREATED):
            pair = selected["held" if holdout else "sent"]
            pair[0] += 1
            pair[1] += hit
    figures = {name: {**_rate(hits, n), "sent": sent} for name, (n, hits, sent) in arms.items()}
    holdout_rate = figures["holdout"]["rate"]
    for name in ("targeted", "control_share"):
        arm = figures[name]
        share = arm["sent"] / arm["members"] if arm["members"] else 0
        arm["sent_share"] = share
        arm["incremental_per_send"] = (
            (arm["rate"] - holdout_rate) / share
            if share and holdout_rate is not None and arm["rate"] is not None
            else None
        )
    on_selected = _difference(_rate(*selected["sent"][::-1]), _rate(*selected["held"][::-1]))
    return {
        **figures,
        "targeted_vs_control_share": _difference(figures["targeted"], figures["control_share"]),
        "targeted_vs_holdout": _difference(figures["targeted"], figures["holdout"]),
        "control_share_vs_holdout": _difference(figures["control_share"], figures["holdout"]),
        "lift_on_selected": on_selected,
    }
