"""The forecasting run: the workspace's order lines become weekly (and daily) series of units and
revenue, marketing_ai.ml.forecast fits and backtests them, and one `forecast` ModelVersion holds
every series' forecast with its 80% band and parts, each series' trend against its recent level,
and the drift alerts of the version it replaces.

Campaign sends are the engine's known events (`promotion`): past ones so it learns what a send
does, planned ones so the forecast expects them. They live in the campaigns app, which crm must
not import (campaigns -> crm is the allowed direction), so campaigns hands its reader over when it
loads (events_source_register), as apps hand workers their rescoring tasks."""

import math
import os
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from django.db import transaction

from crm.models import Forecast, ForecastAlert, ForecastTrend, Workspace
from crm.models.forecasts import Frequency, Level
from crm.selectors import forecasts as selectors
from workers import services as run_services
from workers.models import ModelVersion, TaskRun

FAMILY = selectors.FAMILY
WEEK_HORIZON = 8  # weeks ahead
DAY_HORIZON = 28  # days ahead, for the total and the countries only
N_GROUPS = 20
# A group needs a few products to say something a product's own series does not.
PRODUCTS_PER_GROUP = 3
REASON_PARTS = ("level", "trend", "seasonality", "holiday", "promotion")
# Readers of sends per day, workspace id -> [(day, messages)], registered by the apps that send.
_event_sources: list[Callable[[int], list[tuple[date, int]]]] = []


class ForecastError(ValueError):
    """A workspace the run cannot forecast (no orders, too short a history)."""


def _number(value: Any) -> float | None:
    """A float for a JSON column (PostgreSQL's refuses NaN and infinities)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return round(value, 6) if math.isfinite(value) else None


def _json_clean(value: Any) -> Any:
    """`value` with numpy numbers made plain and non-finite floats made None, all the way down."""
    if isinstance(value, dict):
        return {str(k): _json_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):  # a numpy scalar
        return _json_clean(value.item())
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _jobs() -> int:
    # The engine fits series in parallel; a worker node shares its cores with its other tasks.
    return max(1, min(4, os.cpu_count() or 1))


def forecast_groups(workspace: Workspace, skus: list[str], *, n_groups: int):
    """{sku: group number as text} for the products given (the panel's best sellers), grouped
    by what their names say (the engine's group_products, on the embeddings the clustering
    uses); None when there are too few products to group."""
    from marketing_ai.ml.forecast.groups import group_products  # numpy, transformers: worker

    skus = [sku for sku in skus if sku != selectors.OTHER]
    n_groups = min(n_groups, len(skus) // PRODUCTS_PER_GROUP)
    if n_groups < 2:
        return None
    names = selectors.product_names(workspace.pk, skus)
    labels = group_products([names.get(sku, sku) for sku in skus], n_groups=n_groups, seed=0)
    return {sku: str(int(label)) for sku, label in zip(skus, labels, strict=True)}


def events_source_register(source: Callable[[int], list[tuple[date, int]]]) -> None:
    """Makes `source` (workspace id -> [(day, messages sent or planned)]) one of the readers whose
    sends the forecast takes as promotions (campaigns registers its send ledger)."""
    if source not in _event_sources:
        _event_sources.append(source)


def planned_sends(workspace_id: int, frequency: str) -> Any:
    """The engine's `events`: a DataFrame [ds, promotion] of messages sent or planned per period
    (weeks from Monday, or days), or None when nothing was ever sent."""
    import pandas as pd  # pandas: the forecasting worker's

    per_period: dict[date, int] = {}
    for source in _event_sources:
        for day, count in source(workspace_id):
            if frequency == Frequency.WEEK:
                day -= timedelta(days=day.weekday())
            per_period[day] = per_period.get(day, 0) + int(count)
    if not per_period:
        return None
    days = sorted(per_period)
    return pd.DataFrame(
        {"ds": pd.to_datetime(days), "promotion": [float(per_period[d]) for d in days]}
    )


def _forecast_rows(
    *, workspace, version, panel, result, frequency: str, levels: tuple[str, ...] | None = None
) -> list[Forecast]:
    reasons: dict[tuple[str, Any], dict] = {}
    if result.reasons is not None and len(result.reasons):
        parts = [p for p in REASON_PARTS if p in result.reasons.columns]
        for row in result.reasons.itertuples(index=False):
            why = {p: _number(getattr(row, p)) for p in parts}
            reasons[(row.unique_id, row.ds)] = {p: v for p, v in why.items() if v is not None}
    rows = []
    for row in result.frame.itertuples(index=False):
        measure, level, key = panel.parse(row.unique_id)
        if levels is not None and level not in levels:
            continue
        rows.append(
            Forecast(
                workspace=workspace,
                model_version=version,
                level=level,
                key=key,
                measure=measure,
                frequency=frequency,
                period_start=row.ds.date(),
                mean=_number(row.mean) or 0.0,
                lower=_number(row.lower) or 0.0,
                upper=_number(row.upper) or 0.0,
                reasons=reasons.get((row.unique_id, row.ds), {}),
                model=str(row.model)[:50],
            )
        )
    return rows


def daily_matched_to_weekly(days: list[Forecast], weeks: list[Forecast]) -> int:
    """Scales each series' daily forecasts of every complete week the weekly forecast covers so
    that they add up to that week's forecast (mean, band ends and parts by one factor); returns
    how many weeks were scaled.

    The daily model sees a year of days through a weekly pattern only, so it forecast the
    demo's Christmas week at full trading while the weekly model, which has last year's same
    week and the weeks to Christmas, knew the shop closes: the two must not contradict each
    other on a page. The weekly forecast is the better informed of the two, so the days take
    its total and keep their own shape within the week. The band is scaled with the mean (an
    approximation: its coverage was measured before scaling)."""
    weekly = {(w.level, w.key, w.measure, w.period_start): w.mean for w in weeks}
    by_week: dict[tuple, list[Forecast]] = {}
    for day in days:
        monday = day.period_start - timedelta(days=day.period_start.weekday())
        by_week.setdefault((day.level, day.key, day.measure, monday), []).append(day)
    scaled = 0
    for week, members in by_week.items():
        total = sum(d.mean for d in members)
        if len(members) != 7 or week not in weekly or total <= 0:
            continue  # a part week, a series or week the weekly forecast lacks, or nothing sold
        factor = weekly[week] / total
        for d in members:
            d.mean, d.lower, d.upper = d.mean * factor, d.lower * factor, d.upper * factor
            d.reasons = {part: value * factor for part, value in d.reasons.items()}
        scaled += 1
    return scaled


def _trend_rows(*, workspace, version, panel, table) -> list[ForecastTrend]:
    rows = []
    for row in table.itertuples(index=False):
        change = _number(row.change)
        if change is None:  # nothing sold recently: no share to change by
            continue
        measure, level, key = panel.parse(row.unique_id)
        rows.append(
            ForecastTrend(
                workspace=workspace,
                model_version=version,
                level=level,
                key=key,
                measure=measure,
                frequency=Frequency.WEEK,
                recent=_number(row.recent) or 0.0,
                forecast=_number(row.forecast) or 0.0,
                change=change,
                change_lower=_number(row.change_lower) or change,
                change_upper=_number(row.change_upper) or change,
                direction=str(row.direction),
            )
        )
    return rows


def drift_alerts(
    *, previous: ModelVersion, panel: Any, frequency: str, workspace: Workspace
) -> list[ForecastAlert]:
    """The periods `previous` forecast that `panel` now has complete actuals for, where the
    actual fell outside the 80% band. "(other)" series are left out: which products or
    countries fall in them moves from run to run, so their actuals are not what was forecast."""
    last = panel.y["ds"].max()
    actual = {
        (uid, ds.date()): float(y)
        for uid, ds, y in panel.y[["unique_id", "ds", "y"]].itertuples(index=False)
    }
    earlier = Forecast.objects.filter(
        model_version=previous, frequency=frequency, period_start__lte=last.date()
    ).exclude(key=selectors.OTHER)
    alerts = []
    for row in earlier.iterator(chunk_size=5000):
        uid = f"{row.measure}|{row.level}|{row.key}"
        value = actual.get((uid, row.period_start))
        if value is None or row.lower <= value <= row.upper:
            continue
        alerts.append(
            ForecastAlert(
                workspace=workspace,
                model_version=previous,
                level=row.level,
                key=row.key,
                measure=row.measure,
                frequency=frequency,
                period_start=row.period_start,
                actual=value,
                mean=row.mean,
                lower=row.lower,
                upper=row.upper,
            )
        )
    return alerts


def forecast_run(
    *,
    workspace: Workspace,
    task_run: TaskRun | None = None,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
    horizon: int = WEEK_HORIZON,
    day_horizon: int = DAY_HORIZON,
    top_products: int = 500,
    top_countries: int = 5,
    n_groups: int = N_GROUPS,
    origins: int = 4,
    step: int = 4,
) -> ModelVersion:
    """Forecasts every series of the workspace from the end of its data (not today: the demo's
    ends in 2011) and registers the result as a new active `forecast` version.

    Weekly (weeks start on Monday): `horizon` weeks of the total, the `top_countries` countries,
    the `top_products` best sellers and groups of them learned from their names, in units and
    revenue, backtested on `origins` origins `step` weeks apart (the version's metrics). Daily
    (`day_horizon` days; 0 for none): the total and the countries. Then each weekly series' trend,
    and drift alerts for the periods the replaced version forecast that are now complete.

    Each run becomes the active version: a forecast is dated, and the one it replaces forecast
    from older data (roll back in the admin to bring its numbers back). Safe to run twice: a run
    retried after its worker died finds the version it registered (everything is written in one
    transaction) and stops there. Raises ForecastError for a workspace without orders."""
    # pandas, statsforecast and LightGBM: loaded on the worker, kept out of the web process
    from marketing_ai.ml.forecast import build_panel, fit_forecast, trends

    if task_run is not None:
        done = ModelVersion.objects.filter(
            task_run=task_run, family=FAMILY, workspace=workspace
        ).first()
        if done is not None:
            return done
    progress(2, "reading order lines")
    lines = selectors.order_lines_frame(workspace.pk)
    if lines.empty:
        raise ForecastError("no orders to forecast from")
    progress(6, f"building weekly series ({len(lines):,} day x product x country rows)")

    def weekly(groups: dict | None):
        try:
            return build_panel(
                lines,
                freq="W",
                top_products=top_products,
                top_countries=top_countries,
                groups=groups,
            )
        except ValueError as exc:
            raise ForecastError(f"weekly series: {exc}") from None

    panel = weekly(None)
    groups = None
    if n_groups:
        # Grouped from the panel's own best sellers, so a group holds only products that have
        # a series of their own (the rest are "(other)").
        progress(8, "grouping products by name")
        tops = [panel.parse(uid)[2] for uid in panel.ids if panel.parse(uid)[1] == Level.PRODUCT]
        groups = forecast_groups(workspace, sorted(set(tops)), n_groups=n_groups)
        if groups:
            panel = weekly(groups)
    weeks = panel.y["ds"].nunique()
    share = 0.55 if day_horizon else 0.75
    events = planned_sends(workspace.pk, Frequency.WEEK)
    result = fit_forecast(
        panel,
        horizon=horizon,
        events=events,
        origins=origins,
        step=step,
        n_jobs=_jobs(),
        seed=0,
        progress=lambda f, m: progress(12 + share * 100 * f, f"weekly: {m}"),
    )
    table = trends(panel, result, recent=4)
    daily = None
    if day_horizon:
        progress(70, "building daily series")
        # One product for all: the daily forecast is of the total and the countries only.
        daily_panel = build_panel(
            lines.assign(product="(all)"), freq="D", top_products=1, top_countries=top_countries
        )
        daily = (
            daily_panel,
            fit_forecast(
                daily_panel,
                horizon=day_horizon,
                events=planned_sends(workspace.pk, Frequency.DAY),
                origins=origins,
                step=7,
                n_jobs=_jobs(),
                seed=0,
                progress=lambda f, m: progress(72 + 15 * f, f"daily: {m}"),
            ),
        )
    progress(90, "saving the forecasts")
    members: dict[str, list[str]] = {}
    for sku, group in (groups or {}).items():
        members.setdefault(group, []).append(sku)
    metrics = {**result.metrics, "weeks": int(weeks), "lines": int(len(lines))}
    if daily is not None:
        metrics.update({f"day_{k}": v for k, v in daily[1].metrics.items()})
    params = {
        **result.params,
        "horizon": horizon,
        "day_horizon": day_horizon,
        "top_products": top_products,
        "top_countries": top_countries,
        "origin": (panel.y["ds"].max()).date().isoformat(),
        "groups": members,
        "events": "campaign sends per week (past and planned)" if events is not None else None,
        # The daily backtest (day_* metrics) is of the daily model before its days were scaled
        # to add up to the weekly forecast of each complete week.
        "daily": "each complete week scaled to the weekly forecast" if daily else None,
    }
    with transaction.atomic():
        previous = selectors.active_version(workspace.pk)
        version = run_services.model_version_create(
            family=FAMILY,
            metrics=_json_clean(metrics),
            params=_json_clean(params),
            task_run=task_run,
            workspace=workspace,
        )
        rows = _forecast_rows(
            workspace=workspace, version=version, panel=panel, result=result, frequency="week"
        )
        if daily is not None:
            days = _forecast_rows(
                workspace=workspace,
                version=version,
                panel=daily[0],
                result=daily[1],
                frequency=Frequency.DAY,
                levels=(Level.TOTAL, Level.COUNTRY),
            )
            daily_matched_to_weekly(days, rows)
            rows += days
        Forecast.objects.bulk_create(rows, batch_size=2000)
        ForecastTrend.objects.bulk_create(
            _trend_rows(workspace=workspace, version=version, panel=panel, table=table),
            batch_size=2000,
        )
        if previous is not None:
            alerts = drift_alerts(
                previous=previous, panel=panel, frequency=Frequency.WEEK, workspace=workspace
            )
            if daily is not None:
                alerts += drift_alerts(
                    previous=previous, panel=daily[0], frequency=Frequency.DAY, workspace=workspace
                )
            # A period already flagged for that version (an earlier run saw it) stays one alert.
            ForecastAlert.objects.bulk_create(alerts, batch_size=2000, ignore_conflicts=True)
        run_services.model_version_promote(version=version)
    progress(99, f"{len(rows):,} forecasts saved")
    return version
