"""Reads of the stored forecasts: the version that speaks for a workspace now, the series forecast
to rise or slow, one series' actuals beside its forecast, the drift alerts; and the order lines
the forecasting run learns from, summed in the database per day, product and country.

A series is named as the API takes it: `total`, `country:<code>`, `product:<sku>` or
`group:<n>`; the level and key stored on the rows (crm.models.forecasts) are its two parts."""

from datetime import date, timedelta
from typing import Any

from django.db.models import Case, CharField, F, Max, Min, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate

from crm.models import Forecast, ForecastAlert, ForecastTrend, Order, OrderLine, Product
from crm.models.forecasts import Frequency, Level, Measure
from workers.models import ModelVersion

FAMILY = "forecast"
# The engine's name for what lies beyond its top products or countries, and ours for a sale
# with nobody's country on it (a guest checkout, an erased customer, a country left blank).
OTHER = "(other)"
UNKNOWN_COUNTRY = "Unknown"
# How much of a series' past the chart and the API show before its forecast.
HISTORY_PERIODS = {Frequency.WEEK: 52, Frequency.DAY: 91}
PERIOD_DAYS = {Frequency.WEEK: 7, Frequency.DAY: 1}


class SeriesError(ValueError):
    """A series, measure or frequency that is not one of the workspace's; `field` names the
    query parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def active_version(workspace_id: int) -> ModelVersion | None:
    """The workspace's active forecast version, or None before its first forecast run."""
    return (
        ModelVersion.objects.filter(
            workspace_id=workspace_id, family=FAMILY, status=ModelVersion.Status.ACTIVE
        )
        .order_by("-version")
        .first()
    )


def trending(
    workspace_id: int,
    *,
    direction: str,
    level: str = Level.PRODUCT,
    measure: str = Measure.UNITS,
    limit: int | None = 20,
) -> list[ForecastTrend]:
    """The active version's series forecast to rise (fastest first) or slow (steepest first);
    empty when there is no active forecast."""
    version = active_version(workspace_id)
    if version is None:
        return []
    rows = ForecastTrend.objects.filter(
        workspace_id=workspace_id,
        model_version=version,
        level=level,
        measure=measure,
        direction=direction,
    ).order_by("-change" if direction == ForecastTrend.Direction.RISING else "change", "key")
    return list(rows[:limit] if limit else rows)


# --- what the run learns from -------------------------------------------------------------


def sold_lines(workspace_id: int) -> QuerySet:
    """The order lines that count as demand, each with its buyer's `country`: placed orders and
    returns (negative lines), not cancelled ones; merchandise only (inactive products are the
    demo's postage, fees and manual adjustments, or products withdrawn from sale)."""
    return OrderLine.objects.filter(
        order__workspace_id=workspace_id,
        order__status=Order.Status.PLACED,
        product__active=True,
    ).annotate(
        country=Case(
            When(
                Q(order__customer__isnull=True) | Q(order__customer__country=""),
                then=Value(UNKNOWN_COUNTRY),
            ),
            default=F("order__customer__country"),
            output_field=CharField(),
        )
    )


def order_lines_frame(workspace_id: int) -> Any:
    """The engine's `lines`: a DataFrame [date, product (SKU), country, units, revenue], one row
    per day (UTC) x product x country, summed by the database (the demo's 800k lines become a
    few hundred thousand rows, no model objects)."""
    import pandas as pd  # pandas: the forecasting worker's, kept out of the web process

    rows = (
        sold_lines(workspace_id)
        .annotate(day=TruncDate("order__placed_at"))
        .values("day", "product__sku", "country")
        .annotate(units=Sum("quantity"), revenue=Sum("amount"))
        .order_by()
        .values_list("day", "product__sku", "country", "units", "revenue")
    )
    frame = pd.DataFrame.from_records(
        rows.iterator(chunk_size=20_000),
        columns=["date", "product", "country", "units", "revenue"],
    )
    frame["date"] = pd.to_datetime(frame["date"])
    frame["units"] = frame["units"].astype(float)
    frame["revenue"] = frame["revenue"].astype(float)
    return frame


def data_span(workspace_id: int) -> tuple[date, date] | None:
    """The days (UTC) of the workspace's first and last orders; the last is where its forecasts
    start from, which for a historical data set (the demo's ends in 2011) is not today."""
    span = Order.objects.filter(workspace_id=workspace_id).aggregate(
        first=Min("placed_at"), last=Max("placed_at")
    )
    return None if span["last"] is None else (span["first"].date(), span["last"].date())


def data_end(workspace_id: int) -> date | None:
    """The day of the workspace's last order (UTC)."""
    span = data_span(workspace_id)
    return None if span is None else span[1]


def product_names(workspace_id: int, skus: list[str]) -> dict[str, str]:
    """SKU -> product name, for the SKUs given."""
    return dict(
        Product.objects.filter(workspace_id=workspace_id, sku__in=skus).values_list("sku", "name")
    )


# --- one series, as the admin's chart and the API show it ---------------------------------


def parse_series(text: str) -> tuple[str, str]:
    """`total`, `country:<code>`, `product:<sku>`, `group:<n>` -> (level, key); SeriesError
    for anything else."""
    text = (text or "").strip()
    if text == Level.TOTAL:
        return Level.TOTAL, ""
    level, sep, key = text.partition(":")
    key = key.strip()
    if not sep or level not in (Level.COUNTRY, Level.PRODUCT, Level.GROUP):
        raise SeriesError("series", "one of total, country:<code>, product:<sku>, group:<number>")
    if not key or len(key) > 200:
        raise SeriesError(
            "series", f"{level}: needs a name after the colon (200 characters at most)"
        )
    if level == Level.GROUP and not (key.isascii() and key.isdigit()):
        raise SeriesError("series", "group: a group number, e.g. group:3")
    return level, key


def series_name(level: str, key: str) -> str:
    return Level.TOTAL.value if level == Level.TOTAL else f"{level}:{key}"


def group_members(version: ModelVersion) -> dict[str, list[str]]:
    """Group number -> the SKUs in it, as the version grouped them (none without groups)."""
    return {str(k): list(v) for k, v in (version.params.get("groups") or {}).items()}


def _series_keys(version: ModelVersion, level: str) -> list[str]:
    return list(
        Forecast.objects.filter(model_version=version, level=level, frequency=Frequency.WEEK)
        .order_by("key")
        .values_list("key", flat=True)
        .distinct()
    )


def _lines_of(workspace_id: int, version: ModelVersion, level: str, key: str) -> QuerySet:
    """The sold lines that make up one series, as the version cut them (its own top products
    and countries; "(other)" is everything else)."""
    lines = sold_lines(workspace_id)
    if level == Level.COUNTRY:
        if key == OTHER:
            return lines.exclude(
                country__in=[k for k in _series_keys(version, level) if k != OTHER]
            )
        return lines.filter(country=key)
    if level == Level.PRODUCT:
        if key == OTHER:
            top = [k for k in _series_keys(version, level) if k != OTHER]
            return lines.exclude(product__sku__in=top)
        return lines.filter(product__sku=key)
    if level == Level.GROUP:
        members = group_members(version)
        if key == OTHER:  # the products no group took: the groups add up to the total
            return lines.exclude(product__sku__in=[s for g in members.values() for s in g])
        return lines.filter(product__sku__in=members.get(key, []))
    return lines


def _period_start(day: date, frequency: str) -> date:
    return day - timedelta(days=day.weekday()) if frequency == Frequency.WEEK else day


def series_history(
    workspace_id: int,
    *,
    version: ModelVersion,
    level: str,
    key: str,
    measure: str,
    frequency: str,
    start: date,
    end: date,
) -> list[dict]:
    """The series' actuals per period from `start` to `end` (period starts, inclusive), zeros
    where nothing sold: [{"period_start", "actual"}]. Summed per day by the database, into
    weeks (starting on Monday) here."""
    field = "quantity" if measure == Measure.UNITS else "amount"
    last_day = end + timedelta(days=PERIOD_DAYS[frequency] - 1)
    daily = (
        _lines_of(workspace_id, version, level, key)
        .filter(order__placed_at__date__gte=start, order__placed_at__date__lte=last_day)
        .annotate(day=TruncDate("order__placed_at"))
        .values("day")
        .annotate(value=Sum(field))
        .order_by()
        .values_list("day", "value")
    )
    totals: dict[date, float] = {}
    for day, value in daily:
        period = _period_start(day, frequency)
        totals[period] = totals.get(period, 0.0) + float(value or 0)
    step = timedelta(days=PERIOD_DAYS[frequency])
    out, period = [], start
    while period <= end:
        out.append({"period_start": period, "actual": round(totals.get(period, 0.0), 4)})
        period += step
    return out


def series_forecast(version: ModelVersion, *, level: str, key: str, measure: str, frequency: str):
    """The version's forecast of one series: [{"period_start", "mean", "lower", "upper",
    "reasons", "model"}] in period order (empty when the version has no such series)."""
    return list(
        Forecast.objects.filter(
            model_version=version, level=level, key=key, measure=measure, frequency=frequency
        )
        .order_by("period_start")
        .values("period_start", "mean", "lower", "upper", "reasons", "model")
    )


def series_choices(version: ModelVersion | None) -> dict[str, list[tuple[str, str]]]:
    """What a marketer can pick, by level: [(series, label)] for the version's countries,
    products (by name) and groups (by the products in them)."""
    if version is None:
        return {"total": [("total", "All sales")], "country": [], "product": [], "group": []}
    countries = _series_keys(version, Level.COUNTRY)
    products = _series_keys(version, Level.PRODUCT)
    names = product_names(version.workspace_id, products)
    return {
        "total": [("total", "All sales")],
        "country": [(f"country:{c}", c) for c in countries],
        "product": [
            (f"product:{sku}", f"{names.get(sku, sku)} ({sku})" if sku != OTHER else sku)
            for sku in sorted(products, key=lambda s: (s == OTHER, names.get(s, s)))
        ],
        "group": [
            (f"group:{n}", group_label(version, n, names))
            for n in sorted(
                _series_keys(version, Level.GROUP), key=lambda s: int(s) if s.isdigit() else 0
            )
        ],
    }


def group_label(version: ModelVersion, number: str, names: dict[str, str] | None = None) -> str:
    """ "Group 3: <first products' names>…", so a learned group reads as what is in it."""
    members = group_members(version).get(str(number), [])
    if names is None:
        names = product_names(version.workspace_id, members[:3])
    shown = ", ".join(names.get(sku, sku).strip().lower() for sku in members[:3])
    more = f" +{len(members) - 3}" if len(members) > 3 else ""
    return f"Group {number}: {shown}{more}" if shown else f"Group {number}"


def forecast_series(
    workspace_id: int,
    *,
    series: str = "total",
    measure: str = Measure.UNITS,
    frequency: str = Frequency.WEEK,
) -> dict:
    """One series' history and forecast from the workspace's active version, as the API answers
    and the admin's chart draws it:

    {"series", "level", "key", "measure", "frequency", "version" (None before the first run),
     "message", "history": [{"period_start", "actual"}],
     "forecast": [{"period_start", "mean", "lower", "upper", "reasons", "model"}]}

    SeriesError for a series, measure or frequency the workspace's forecast does not have."""
    if measure not in Measure.values:
        raise SeriesError("measure", f"one of {', '.join(Measure.values)}")
    if frequency not in Frequency.values:
        raise SeriesError("frequency", f"one of {', '.join(Frequency.values)}")
    level, key = parse_series(series)
    body = {
        "series": series_name(level, key),
        "level": level,
        "key": key,
        "measure": measure,
        "frequency": frequency,
        "version": None,
        "metrics": {},
        "message": "",
        "history": [],
        "forecast": [],
    }
    version = active_version(workspace_id)
    if version is None:
        body["message"] = (
            "no forecast yet: the first forecast run has not finished for this workspace "
            "(it runs nightly, or start one from the admin's Forecasts page)"
        )
        return body
    forecast = series_forecast(version, level=level, key=key, measure=measure, frequency=frequency)
    if not forecast:
        if frequency == Frequency.DAY and level in (Level.PRODUCT, Level.GROUP):
            raise SeriesError("frequency", "daily forecasts cover the total and countries only")
        hint = {
            Level.COUNTRY: "countries are the largest few by units, and (other)",
            Level.PRODUCT: "products are the best sellers by units, and (other)",
            Level.GROUP: "groups are numbered from 0",
        }.get(level, "")
        raise SeriesError(
            "series", f"{body['series']} is not a series of this workspace's forecast ({hint})"
        )
    step = timedelta(days=PERIOD_DAYS[frequency])
    first = forecast[0]["period_start"]
    origin = first - step  # the last period the version learned from
    # From the first period with orders (no run of zeros before the shop opened); past the
    # origin too once a period is complete (its actuals arrived after the run): up to the last
    # period that ends on or before the last order's day.
    first_day, last_day = data_span(workspace_id) or (origin, origin)
    complete = _period_start(last_day + timedelta(days=1), frequency) - step
    start = max(first - step * HISTORY_PERIODS[frequency], _period_start(first_day, frequency))
    body["history"] = series_history(
        workspace_id,
        version=version,
        level=level,
        key=key,
        measure=measure,
        frequency=frequency,
        start=min(start, origin),
        end=max(origin, complete),
    )
    body["forecast"] = forecast
    body["version"] = {
        "id": version.pk,
        "version": version.version,
        "created_at": version.created_at,
        "origin": origin,
    }
    body["metrics"] = version.metrics
    return body


def recent_alerts(workspace_id: int, *, limit: int = 20) -> list[ForecastAlert]:
    """The workspace's latest drift alerts: completed periods whose actual left a version's 80%
    band (newest period first)."""
    return list(
        ForecastAlert.objects.filter(workspace_id=workspace_id)
        .select_related("model_version")
        .order_by("-period_start", "level", "key")[:limit]
    )
