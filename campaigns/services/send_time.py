"""Best-hour campaigns' results: best-hour recipients against random-hour (explored) ones, and
the spread of the hours chosen.

Both groups are recipients with a best hour of their own (`decision.best_hour_known`), sent,
not held out; the explored ones went at an hour drawn uniformly from the window, chosen by the
campaign's seed, so the difference between the groups is the gain of sending at the best hour.
Rates are per message sent; a conversion is the goal event within the attribution window
(campaigns.services.results). Below MIN_PER_GROUP sent messages in either group, the answer
says "too few messages to decide" rather than a difference that noise could have made.
"""

from collections import defaultdict

from django.db.models import Count, Q

from campaigns.models import Campaign, Message
from marketing_ai.ml import experiment

MIN_PER_GROUP = 100
TOO_FEW = "too few messages to decide"


def _rates(rows) -> dict:
    agg = rows.aggregate(
        sent=Count("id"),
        clicks=Count("id", filter=Q(clicked_at__isnull=False)),
        conversions=Count("id", filter=Q(converted_at__isnull=False)),
    )
    n = agg["sent"]
    out = {"sent": n}
    for key in ("clicks", "conversions"):
        low, high = experiment.wilson_interval(agg[key], n)
        out[key] = {
            "count": agg[key],
            "rate": agg[key] / n if n else None,
            "ci95": [low, high] if n else None,
        }
    return out


def _difference(best: dict, random: dict, key: str) -> dict:
    a, b = (best[key]["count"], best["sent"]), (random[key]["count"], random["sent"])
    if not (a[1] and b[1]):
        return {"difference": None, "ci95": None}
    low, high = experiment.difference_interval(*a, *b)
    return {"difference": a[0] / a[1] - b[0] / b[1], "ci95": [low, high]}


def _verdict(diff: dict, enough: bool) -> str:
    if not enough:
        return TOO_FEW
    low, high = diff["ci95"]
    if low > 0:
        return "best hour ahead"
    if high < 0:
        return "random hour ahead"
    return "no clear difference"


def hour_spread(*, campaign: Campaign) -> dict:
    """{"best": [24 counts], "explore": [24 counts], "campaign_time": n}: the local hours the
    launch chose (queued or sent, not held out), by how they were chosen."""
    spread = {"best": [0] * 24, "explore": [0] * 24, "campaign_time": 0}
    rows = (
        Message.objects.filter(campaign=campaign, holdout=False)
        .exclude(state=Message.State.SKIPPED)
        .values_list("decision__hour", "decision__hour_explore")
        .annotate(n=Count("id"))
        .order_by()
    )
    tally: dict = defaultdict(int)
    for hour, explore, n in rows:
        tally[(hour, bool(explore))] += n
    for (hour, explore), n in tally.items():
        if isinstance(hour, int) and 0 <= hour < 24:
            spread["explore" if explore else "best"][hour] += n
        else:
            spread["campaign_time"] += n
    return spread


def send_time_comparison(*, campaign: Campaign) -> dict | None:
    """Best-hour against random-hour recipients of a best-hour campaign (None for other
    timings): each group's click and conversion rates with 95% intervals, the differences
    (best - random) with Newcombe's 95% interval, and a verdict in words."""
    if campaign.timing != Campaign.Timing.BEST:
        return None
    sent = Message.objects.filter(
        campaign=campaign,
        holdout=False,
        state=Message.State.SENT,
        decision__best_hour_known=True,
    )
    best = _rates(sent.filter(decision__hour_explore=False))
    random = _rates(sent.filter(decision__hour_explore=True))
    enough = min(best["sent"], random["sent"]) >= MIN_PER_GROUP
    comparison = {
        "best": best,
        "random": random,
        "min_per_group": MIN_PER_GROUP,
        "enough": enough,
        "window_hours": campaign.window_hours,
        "explore_percent": campaign.explore_percent,
        "without_best_hour": Message.objects.filter(
            campaign=campaign, holdout=False, state=Message.State.SENT
        )
        .exclude(decision__best_hour_known=True)
        .count(),
        "spread": hour_spread(campaign=campaign),
    }
    for key in ("clicks", "conversions"):
        diff = _difference(best, random, key)
        comparison[f"{key}_difference"] = {**diff, "verdict": _verdict(diff, enough)}
    return comparison
