"""Journeys that start on a date (a birthday, a signup anniversary, "30 days after the last
order"): once a day in each customer's time zone, at the trigger's local time, the customers
whose date falls on that day are taken in.

Each (journey, zone, local day) is one transaction that first writes its JourneyDateRun row; a
second worker or a second tick meets the row and takes no one in again. Days missed while no
worker ran (an outage, a deploy) are caught up for JOURNEY_DATE_CATCH_UP_DAYS; a paused journey
lets its days pass, taking no one in.
"""

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from campaigns import schedule
from campaigns.journeys import dates, engine, graph
from campaigns.journeys.models import Enrolment, Journey, JourneyDateRun
from crm.models import Customer

log = logging.getLogger(__name__)

CHUNK = 5000  # customers per enrolment call


def zones(workspace_id: int) -> dict[str, list[str]]:
    """The workspace's customers' time zones: each zone's name to the values that mean it (an
    empty or unknown value means the platform's zone)."""
    found = defaultdict(list)
    names = (
        Customer.objects.filter(workspace_id=workspace_id, erased_at__isnull=True)
        .values_list("time_zone", flat=True)
        .distinct()
    )
    for name in names:
        found[schedule.zone(name, settings.TIME_ZONE).key].append(name)
    return dict(found)


def run_due(*, now: datetime | None = None) -> int:
    """Takes in every date-triggered journey's customers whose day has come in their zone and
    was not taken in yet. Returns how many entered."""
    now = now or timezone.now()
    journeys = Journey.objects.filter(
        status__in=(Journey.Status.LIVE, Journey.Status.PAUSED), version__isnull=False
    ).select_related("version", "workspace")
    entered = 0
    for journey in journeys:
        trigger = journey.version.definition["trigger"]
        if trigger["type"] != "date":
            continue
        at = graph.time_of_day(trigger.get("at") or "09:00")
        last_runs = dict(
            JourneyDateRun.objects.filter(journey=journey)
            .values("zone")
            .annotate(last=Max("day"))
            .values_list("zone", "last")
        )
        started = journey.versions.order_by("number").values_list("published_at", flat=True)[0]
        for key, names in zones(journey.workspace_id).items():
            tz = schedule.zone(key, "UTC")
            local = now.astimezone(tz)
            today = local.date() if local.time() >= at else local.date() - timedelta(days=1)
            first = max(
                today - timedelta(days=settings.JOURNEY_DATE_CATCH_UP_DAYS - 1),
                started.astimezone(tz).date(),
            )
            if key in last_runs:
                first = max(first, last_runs[key] + timedelta(days=1))
            day = first
            while day <= today:
                entered += _run_day(journey, trigger, key, names, day, now)
                day += timedelta(days=1)
    return entered


@transaction.atomic
def _run_day(journey: Journey, trigger: dict, key: str, names: list[str], day, now) -> int:
    try:
        with transaction.atomic():
            run = JourneyDateRun.objects.create(journey=journey, zone=key, day=day, ran_at=now)
    except IntegrityError:
        return 0  # another worker has this day
    if journey.status != Journey.Status.LIVE:
        return 0
    customers = Customer.objects.filter(
        workspace_id=journey.workspace_id, erased_at__isnull=True, time_zone__in=names
    )
    matching = dates.falling_on(
        customers,
        trigger["date"],
        local_day=day,
        offset_days=trigger.get("offset_days", 0),
        yearly=trigger.get("yearly", False),
        tz=schedule.zone(key, "UTC"),
    )
    ids = set(matching.values_list("pk", flat=True))
    if trigger["date"] not in (dates.SIGNED_UP, dates.LAST_ORDER):
        # The database matched the text's month and day; only a real date counts.
        found = dates.of_customers(trigger["date"], ids, lambda pk: schedule.zone(key, "UTC"))
        ids &= set(found)
    context = {"date": trigger["date"], "day": day.isoformat()}
    # Once a customer a day: one who moved to another zone since their old zone's run was
    # taken in there already.
    ids -= set(
        Enrolment.objects.filter(
            journey=journey, customer_id__in=ids, context__date=context["date"],
            context__day=context["day"],
        ).values_list("customer_id", flat=True)
    )  # fmt: skip
    ids = sorted(ids)
    version = journey.version
    version.journey = journey
    total = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        total += len(engine.enrol(version=version, entrants=[(c, context) for c in chunk], now=now))
    run.entered = total
    run.save(update_fields=["entered"])
    if total:
        log.info("journey %s: %d entered for %s in %s", journey.pk, total, day, key)
    return total
