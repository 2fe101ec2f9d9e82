"""Each customer's best local hour to receive a message (CustomerScore kind "best_hour"), from the
hours, in the customer's own time zone, at which they clicked a message, converted (the goal
events, `purchase` by default), or opened one themselves (machine opens, from Apple Mail Privacy
Protection and the image proxies, are left out: marketing_ai.ml.sendtime.is_machine_open).

Computed for a whole workspace by a run on the `ml` queue (crm.tasks.models.send_time), not at
launch: the workspace's hour profile, which every customer is shrunk toward, needs every
customer's history, and reading a year of events is work for a worker, not for a launch. A launch
reads the stored scores (campaigns.decisions.timing).
"""

from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crm.models import Customer, CustomerScore, Event, Workspace
from crm.services.scores import scores_upsert

KIND = "best_hour"
CLICK, OPEN = "email_click", "email_open"
# Weight of one event in the hour counts: a click or a conversion is a person acting at that
# hour; an open (a person's, machine opens dropped) says less.
WEIGHTS = {"click": 1.0, "conversion": 1.0, "open": 0.5}
FEATURES = {"click": "clicks_at_hour", "conversion": "conversions_at_hour", "open": "opens_at_hour"}


def local_zone(name: str) -> ZoneInfo:
    """The customer's zone; the platform's default zone (then UTC) when unknown."""
    for candidate in (name, settings.CAMPAIGN_DEFAULT_TIME_ZONE, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def engagement_hours(*, workspace: Workspace, since, conversion_events: list[str]):
    """({customer: {(kind, local hour): count}}, {customer: zone name}, machine opens and
    scanner clicks left out) for the workspace's customers since `since`."""
    # numpy is loaded by the caller's task; the rule itself is plain Python
    from marketing_ai.ml.sendtime import is_machine_click, is_machine_open

    zones = dict(
        Customer.objects.filter(workspace=workspace, erased_at__isnull=True).values_list(
            "id", "time_zone"
        )
    )
    tz_cache: dict[str, ZoneInfo] = {}
    hours: dict[int, dict] = defaultdict(lambda: defaultdict(float))
    ignored = 0
    rows = (
        Event.objects.filter(
            workspace=workspace,
            type__in=[CLICK, OPEN, *conversion_events],
            occurred_at__gte=since,
            customer__erased_at__isnull=True,
        )
        .values_list("customer_id", "type", "occurred_at", "properties")
        .order_by()
    )
    for customer_id, kind, at, properties in rows.iterator(chunk_size=5000):
        props = properties if isinstance(properties, dict) else {}
        if kind == OPEN:
            after = props.get("seconds_after_send")
            after = after if isinstance(after, int | float) else None
            agent = props.get("user_agent") if "user_agent" in props else None
            if is_machine_open(agent, after):
                ignored += 1
                continue
            what = "open"
        elif kind == CLICK:
            if is_machine_click(props.get("user_agent")):
                ignored += 1
                continue
            what = "click"
        else:
            what = "conversion"
        name = zones.get(customer_id) or ""
        if name not in tz_cache:
            tz_cache[name] = local_zone(name)
        hours[customer_id][(what, at.astimezone(tz_cache[name]).hour)] += 1
    return hours, zones, ignored


def _reasons(tally: dict, result, row: int, zone: str) -> list[dict]:
    reasons = []
    for what, feature in FEATURES.items():
        at = sorted(((n, h) for (w, h), n in tally.items() if w == what), reverse=True)[:3]
        reasons += [{"feature": feature, "hour": h, "count": int(n)} for n, h in at]
    thin = bool(result.thin[row])
    reasons += [
        {"feature": "events", "value": round(float(result.events[row]), 2)},
        {"feature": "own_data_weight", "value": round(float(result.weight[row]), 3)},
        {"feature": "confidence", "value": round(float(result.confidence[row]), 3)},
        # Thin: this hour is mostly the workspace's profile; campaigns send at their own time.
        {"feature": "thin", "value": thin},
        {"feature": "time_zone", "value": zone or settings.CAMPAIGN_DEFAULT_TIME_ZONE},
        # The whole shrunk profile: a launch whose window lacks the best hour takes the next best.
        {"feature": "hour_profile", "value": [round(float(p), 4) for p in result.posterior[row]]},
    ]
    return reasons


def best_hours_compute(
    *,
    workspace: Workspace,
    days: int = 365,
    conversion_events: list[str] | None = None,
    progress=None,
) -> dict:
    """Rewrites the workspace's "best_hour" scores from the last `days` days of engagement.

    A customer whose own data are too thin is marked so in the reasons (campaigns send them at
    the campaign's own time; their hour is the shrunk profile's, near the workspace's best); in a
    workspace too thin to have a best hour, thin customers get no row.
    Returns the workspace-wide facts (its best hour, the prior's strength, counts)."""
    import numpy as np  # numpy/LightGBM with it: loaded on use, not in the web process

    # numpy/LightGBM with it: loaded on use, not in the web process
    from marketing_ai.ml import sendtime

    if not 1 <= days <= 3650:
        raise ValueError(f"days must be 1 to 3650, not {days}")
    conversion_events = list(conversion_events or ["purchase"])
    now = timezone.now()
    if progress:
        progress(10, "reading clicks, conversions and opens")
    hours, zones, ignored = engagement_hours(
        workspace=workspace, since=now - timedelta(days=days), conversion_events=conversion_events
    )
    customers = sorted(hours)
    counts = np.zeros((len(customers), sendtime.HOURS))
    for i, customer_id in enumerate(customers):
        for (what, hour), n in hours[customer_id].items():
            counts[i, hour] += WEIGHTS[what] * n
    if progress:
        progress(50, f"best hours of {len(customers):,} customers")
    result = sendtime.best_hours(counts, seed=workspace.pk)
    scores = [
        CustomerScore(
            workspace=workspace,
            customer_id=customer_id,
            kind=KIND,
            value=float(result.hour[i]),
            reasons=_reasons(hours[customer_id], result, i, zones.get(customer_id) or ""),
            computed_at=now,
        )
        for i, customer_id in enumerate(customers)
        if not (result.thin[i] and result.workspace_hour is None)
    ]
    if progress:
        progress(80, f"writing {len(scores):,} scores")
    with transaction.atomic():
        scores_upsert(scores)
        # Customers with nothing left in the period (or now thin in a thin workspace) lose a
        # stale best hour: every row this run wrote carries its `now`.
        CustomerScore.objects.filter(workspace=workspace, kind=KIND, computed_at__lt=now).delete()
    return {
        "customers": len(customers),
        "scored": len(scores),
        "confident": int((~result.thin).sum()),
        "thin": int(result.thin.sum()),
        "machine_events_ignored": ignored,
        "workspace_hour": result.workspace_hour,
        "workspace_events": round(result.workspace_events, 1),
        "prior_strength": round(result.prior_strength, 2),
        "prior_strength_basis": result.strength_basis,
        "days": days,
        "conversion_events": conversion_events,
    }
