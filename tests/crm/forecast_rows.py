"""Stored forecasts for the tests of what acts on them: a version of the "forecast" family with
product trends (and weekly total revenue), written as the forecast run stores them."""

from datetime import date, timedelta

from crm.models import Forecast, ForecastTrend, Workspace
from crm.selectors.forecasts import FAMILY
from workers.models import ModelVersion


def direction(lower: float, upper: float) -> str:
    """Rising or slowing only when the whole band of the change is on one side of zero."""
    if lower > 0:
        return ForecastTrend.Direction.RISING
    if upper < 0:
        return ForecastTrend.Direction.SLOWING
    return ForecastTrend.Direction.STEADY


def forecast_version(
    workspace: Workspace,
    trends: dict[str, tuple[float, ...]],
    *,
    status: str = ModelVersion.Status.ACTIVE,
    measure: str = "units",
    revenue_weeks: dict[date, tuple[float, float, float]] | None = None,
) -> ModelVersion:
    """A forecast version with one product trend per SKU, {sku: (change, lower, upper[, recent
    units a week, 100 unless given])}, and the total revenue's weekly forecast {monday: (mean,
    lower, upper)}."""
    latest = ModelVersion.objects.filter(workspace=workspace, family=FAMILY).order_by("-version")
    version = ModelVersion.objects.create(
        workspace=workspace,
        family=FAMILY,
        version=(latest.first().version + 1) if latest.exists() else 1,
        status=status,
    )
    ForecastTrend.objects.bulk_create(
        ForecastTrend(
            workspace=workspace,
            model_version=version,
            level="product",
            key=sku,
            measure=measure,
            frequency="week",
            recent=recent,
            forecast=recent * (1 + change),
            change=change,
            change_lower=lower,
            change_upper=upper,
            direction=direction(lower, upper),
        )
        for sku, (change, lower, upper, recent) in (
            (sku, (*values, 100.0)[:4]) for sku, values in trends.items()
        )
    )
    Forecast.objects.bulk_create(
        Forecast(
            workspace=workspace,
            model_version=version,
            level="total",
            key="",
            measure="revenue",
            frequency="week",
            period_start=monday,
            mean=mean,
            lower=lower,
            upper=upper,
            model="ensemble",
        )
        for monday, (mean, lower, upper) in (revenue_weeks or {}).items()
    )
    return version


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())
