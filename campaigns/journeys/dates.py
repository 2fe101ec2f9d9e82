"""Customers' dates for journeys: a birthday or any date attribute, when they signed up, their
last order; the moment a date (with its offset, yearly or once) next falls due in the customer's
time zone, and which customers' dates fall on a given local day.

Attribute dates are read as ISO text ("1990-05-17", or a timestamp starting so); anything else
is no date. Signed-up and last-order are moments, taken as the local day they fell on.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Max, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import ExtractDay, ExtractMonth, Substr

from campaigns.journeys import graph
from crm.models import Customer, Order

SIGNED_UP, LAST_ORDER = graph.DATE_SOURCES


def on_day(day: date, year: int) -> date:
    """`day`'s month and day in `year`; 29 February is the 28th in a year without one."""
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def parse(value) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def of_customers(source: str, customer_ids, tz_of) -> dict[int, date]:
    """Each customer's date from `source` (customers without one are left out); `tz_of(id)` is
    the customer's zone, the local day a moment fell on."""
    ids = list(customer_ids)
    if source == SIGNED_UP:
        moments = Customer.objects.filter(pk__in=ids).values_list("pk", "created_at")
    elif source == LAST_ORDER:
        moments = (
            _orders()
            .filter(customer_id__in=ids)
            .values("customer_id")
            .annotate(last=Max("placed_at"))
            .values_list("customer_id", "last")
        )
    else:
        found = {}
        for pk, attributes in Customer.objects.filter(pk__in=ids).values_list("pk", "attributes"):
            if (day := parse((attributes or {}).get(source))) is not None:
                found[pk] = day
        return found
    return {pk: moment.astimezone(tz_of(pk)).date() for pk, moment in moments if moment}


def next_due(
    day: date, *, offset_days: int, yearly: bool, at, tz: ZoneInfo, now: datetime
) -> datetime:
    """When `day` + offset at local time `at` next comes; a date once and already past: now."""
    if not yearly:
        due = datetime.combine(day + timedelta(days=offset_days), at, tzinfo=tz)
        return max(due, now)
    this_year = now.astimezone(tz).year
    for year in (this_year - 1, this_year, this_year + 1, this_year + 2):
        due = datetime.combine(on_day(day, year) + timedelta(days=offset_days), at, tzinfo=tz)
        if due > now:
            return due
    raise AssertionError("a yearly date always comes again within two years")


def falling_on(
    customers: QuerySet, source: str, *, local_day: date, offset_days: int, yearly: bool, tz
) -> QuerySet:
    """The customers of `customers` whose date + offset is `local_day` (in `tz`)."""
    anchor = local_day - timedelta(days=offset_days)
    if source in (SIGNED_UP, LAST_ORDER):
        if source == LAST_ORDER:
            customers = customers.annotate(
                moment=Max("orders__placed_at", filter=_placed("orders__"))
            )
        field = "created_at" if source == SIGNED_UP else "moment"
        if not yearly:
            start = datetime.combine(anchor, datetime.min.time(), tzinfo=tz)
            return customers.filter(
                **{f"{field}__gte": start, f"{field}__lt": start + timedelta(days=1)}
            )
        customers = customers.annotate(
            month=ExtractMonth(field, tzinfo=tz), day=ExtractDay(field, tzinfo=tz)
        )
        match = Q(month=anchor.month, day=anchor.day)
        if _leap_stand_in(anchor):
            match |= Q(month=2, day=29)
        return customers.filter(match)
    text = KeyTextTransform(source, "attributes")
    if not yearly:
        return customers.annotate(on=Substr(text, 1, 10)).filter(on=anchor.isoformat())
    match = Q(month_day=anchor.strftime("-%m-%d"))
    if _leap_stand_in(anchor):
        match |= Q(month_day="-02-29")
    return customers.annotate(month_day=Substr(text, 5, 6)).filter(match)


def _leap_stand_in(day: date) -> bool:
    """28 February of a year with no 29th: the day 29 February's dates are kept on."""
    return (day.month, day.day) == (2, 28) and on_day(date(2000, 2, 29), day.year).day == 28


def _placed(prefix: str = "") -> Q:
    return Q(**{f"{prefix}kind": Order.Kind.ORDER, f"{prefix}status": Order.Status.PLACED})


def _orders() -> QuerySet:
    return Order.objects.filter(_placed())
