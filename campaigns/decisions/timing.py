"""When each recipient's message is due. The campaign's own timing (now, one moment, a local
time) is computed per time zone by campaigns.schedule; best-hour timing moves it per recipient.

Best hour ("best", issue 17): the window runs from the campaign's send time (its `send_at`, or
the launch) for `window_hours`. Each recipient goes at the start of their best local hour (the
CustomerScore "best_hour" that crm.services.send_time writes) within the window, or, when the
window lacks it or it is quiet, at the window's hour their profile ranks highest; quiet hours
are never chosen. A share `explore_percent` of the recipients, drawn with the campaign's seed, go
at an hour drawn uniformly from the window's open hours instead, so that the results can compare
best-hour against random-hour sends honestly. Recipients whose data are too thin (or who have no
score yet) go at the campaign's own time, and their `decision` says so.

Every recipient's `decision` holds: best_hour (their best hour, or None), best_hour_known,
hour_explore, hour (the local hour chosen), hour_probability (the probability this policy gave
the hour chosen: e/n for an explored one, 1 - e + e/n for the best one, with e the explore share
and n the window's open hours), hour_basis (why, in words).
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from campaigns import schedule
from campaigns.models import Campaign
from campaigns.services.draws import unit
from crm.models import Customer, CustomerScore

KIND = "best_hour"
UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Known:
    """A recipient's stored best hour: `hour` (0..23, of their shrunk profile), whether
    their own data were too thin, `rank` (bytes: rank[h] is hour h's place in their shrunk
    profile, 0 the best; None if no profile was stored) and the confidence the score reported.
    Ranks rather than the 24 floats: a launch holds one of these per recipient."""

    hour: int
    thin: bool
    rank: bytes | None
    confidence: float | None


def _rank(profile) -> bytes | None:
    if not (isinstance(profile, list) and len(profile) == 24):
        return None
    order = sorted(range(24), key=lambda h: -float(profile[h]))
    rank = bytearray(24)
    for place, hour in enumerate(order):
        rank[hour] = place
    return bytes(rank)


def window_slots(
    *,
    start: datetime,
    window_hours: int,
    tz: ZoneInfo,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
) -> list[tuple[datetime, int]]:
    """The open hours of [start, start + window_hours): (moment in UTC, local hour) for each
    local hour that begins in the window (the first from `start` itself), quiet hours left out.
    Hours are stepped in UTC from the local hour's start, so a DST change neither repeats nor
    skips a real hour."""
    end = start + timedelta(hours=window_hours)
    base = start.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    slots = []
    for k in range(window_hours + 1):
        begins = base + timedelta(hours=k)
        moment = max(begins, start)
        if moment >= end:
            break
        local = moment.astimezone(tz)
        if schedule.in_quiet_hours(local.time().replace(tzinfo=None), quiet_start, quiet_end):
            continue
        slots.append((moment.astimezone(UTC), begins.astimezone(tz).hour))
    return slots


def known_hours(
    workspace_id: int, customer_ids: list[int] | None = None, keep: set | None = None
) -> dict[int, Known]:
    """The workspace's stored best hours by customer id: only `customer_ids`' (a short list,
    asked of the database) or only `keep`'s (a launch's audience, filtered here) when given."""
    known = {}
    rows = CustomerScore.objects.filter(workspace_id=workspace_id, kind=KIND)
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    rows = rows.values_list("customer_id", "value", "reasons")
    for customer_id, value, reasons in rows.iterator(chunk_size=5000):
        if keep is not None and customer_id not in keep:
            continue
        facts = {r.get("feature"): r for r in reasons or [] if isinstance(r, dict)}
        known[customer_id] = Known(
            hour=int(value) % 24,
            thin=bool(facts.get("thin", {}).get("value")),
            rank=_rank(facts.get("hour_profile", {}).get("value")),
            confidence=facts.get("confidence", {}).get("value"),
        )
    return known


def choose(
    *,
    customer_id: int,
    known: Known | None,
    slots: list[tuple[datetime, int]],
    fallback: datetime,
    explore_share: float,
    seed: int,
    thin_goes: str = "fallback",
) -> tuple[datetime, dict]:
    """(due, facts) for one recipient. `fallback` is when they go with no usable best hour (the
    campaign's time); `thin_goes` "workspace" sends a thin recipient at their stored hour instead
    (their profile shrunk toward the workspace's, so near its best hour), as launches and
    journeys' delays do."""
    usable = known is not None and (not known.thin or thin_goes == "workspace")
    facts = {
        "best_hour": known.hour if usable else None,
        "best_hour_known": usable,
        "hour_confidence": known.confidence if known else None,
        "hour_thin": bool(known.thin) if known else None,
    }
    explore = unit(seed, "hour_explore", customer_id) < explore_share
    if not slots:
        return fallback, {
            **facts,
            "hour_explore": False,
            "hour": None,
            "hour_probability": 1.0,
            "hour_basis": "every hour of the window is quiet: the campaign's time",
        }
    n = len(slots)
    greedy = None
    if usable:
        rank = known.rank or bytes(0 if h == known.hour else 1 for h in range(24))
        # the earliest of the open hours the profile ranks highest
        greedy = min(range(n), key=lambda i: (rank[slots[i][1]], i))
    if explore:
        k = min(n - 1, int(unit(seed, "hour_pick", customer_id) * n))
        probability = explore_share / n + (1 - explore_share) * (k == greedy)
        moment, hour = slots[k]
        basis = f"explore: uniform over the window's {n} open hours"
    elif usable:
        moment, hour = slots[greedy]
        probability = 1 - explore_share + explore_share / n
        basis = "best hour" if hour == known.hour else "the window's best-ranked open hour"
        if known.thin:
            basis = "their shrunk best hour, near the workspace's (too few events of their own)"
    else:
        why = "too few events of their own" if known else "no best hour computed yet"
        return fallback, {
            **facts,
            "hour_explore": False,
            "hour": None,
            "hour_probability": round(1 - explore_share, 6),
            "hour_basis": f"{why}: the campaign's time",
        }
    return moment, {
        **facts,
        "hour_explore": explore,
        "hour": hour,
        "hour_probability": round(probability, 6),
        "hour_basis": basis,
    }


class CampaignTime:
    def due(self, customer_id: int, zone_due: datetime) -> tuple[datetime, dict]:
        """(when `customer_id` is due, facts for the message's `decision`); `zone_due` is the
        campaign's time in the customer's zone."""
        return zone_due, {}


class BestHour:
    """Best-hour timing for one launch: the scores and time zones read once."""

    def __init__(self, campaign: Campaign, customers: list) -> None:
        now = timezone.now()
        self.campaign = campaign
        self.start = max(campaign.send_at or now, now)
        self.zones = {c.pk: c.time_zone or "" for c in customers}
        self.known = known_hours(campaign.workspace_id, keep=set(self.zones))
        self.slots: dict[str, list] = {}
        self.seed = campaign.seed or 0
        self.share = (campaign.explore_percent or 0) / 100

    def _slots(self, zone_name: str) -> list[tuple[datetime, int]]:
        if zone_name not in self.slots:
            self.slots[zone_name] = window_slots(
                start=self.start,
                window_hours=self.campaign.window_hours,
                tz=schedule.zone(zone_name, settings.CAMPAIGN_DEFAULT_TIME_ZONE),
                quiet_start=self.campaign.quiet_start,
                quiet_end=self.campaign.quiet_end,
            )
        return self.slots[zone_name]

    def due(self, customer_id: int, zone_due: datetime) -> tuple[datetime, dict]:
        return choose(
            customer_id=customer_id,
            known=self.known.get(customer_id),
            slots=self._slots(self.zones.get(customer_id, "")),
            fallback=zone_due,
            explore_share=self.share,
            seed=self.seed,
            # bench/sendtime.py: the thin at their shrunk hour earned +95% over a random hour,
            # at the campaign's time +67% (its 10:00 a poor hour for that population)
            thin_goes="workspace",
        )


def for_launch(campaign: Campaign, customers: list):
    if campaign.timing == Campaign.Timing.BEST:
        return BestHour(campaign, customers)
    return CampaignTime()


def best_hour_due(
    workspace_id: int,
    customer_ids: list[int],
    after: datetime,
    window_hours: int = 24,
    explore_percent: float = 10,
    *,
    seed: int | None = None,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
) -> dict[int, tuple[datetime, dict]]:
    """For a journey's delay "until the recipient's best hour": {customer id: (due in UTC,
    facts)} for the workspace's customers among `customer_ids`, each due at their best local hour
    within [after, after + window_hours) (an explore_percent share at a random open hour). A
    recipient with too few events of their own goes at their stored hour all the same (shrunk
    toward the workspace's best); one with no score at all at `after`. `seed` defaults to the
    hour of `after`, so that the same customers are not the explored ones at every step."""
    if window_hours < 1 or not 0 <= explore_percent <= 100:
        raise ValueError("window_hours must be >= 1 and explore_percent within 0..100")
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    after = after.astimezone(UTC)
    if seed is None:
        seed = int(after.timestamp() // 3600)
    customer_ids = list(customer_ids)
    known = known_hours(workspace_id, customer_ids)
    zones = dict(
        Customer.objects.filter(workspace_id=workspace_id, pk__in=customer_ids).values_list(
            "id", "time_zone"
        )
    )
    slots: dict[str, list] = {}
    out = {}
    for customer_id, zone_name in zones.items():
        zone_name = zone_name or ""
        if zone_name not in slots:
            slots[zone_name] = window_slots(
                start=after,
                window_hours=window_hours,
                tz=schedule.zone(zone_name, settings.CAMPAIGN_DEFAULT_TIME_ZONE),
                quiet_start=quiet_start,
                quiet_end=quiet_end,
            )
        out[customer_id] = choose(
            customer_id=customer_id,
            known=known.get(customer_id),
            slots=slots[zone_name],
            fallback=after,
            explore_share=explore_percent / 100,
            seed=seed,
            thin_goes="workspace",
        )
    return out
