"""Catalogue products as the active forecast sees them: those forecast to rise (offered to copy
briefs, lifted in recommendation lists), with the change and its 80% band in plain words."""

from dataclasses import dataclass

from crm.models import ForecastTrend, Product
from crm.models.forecasts import Frequency, Level, Measure
from crm.selectors.forecasts import active_version

# Under one unit a week recently, a share of change says little (+4,000% of next to nothing).
SMALL_RECENT = 1.0


@dataclass(frozen=True)
class TrendingProduct:
    product_id: int
    name: str
    sku: str
    change: float  # forecast units per week over the horizon / recent units per week - 1
    change_lower: float  # the 80% band of the change
    change_upper: float
    model_version_id: int
    recent: float = 0.0  # units a week lately
    forecast: float = 0.0  # units a week forecast

    def label(self) -> str:
        """e.g. "WHITE MUG: +25% (80% band +10% to +40%)"."""
        if abs(self.recent) < SMALL_RECENT:
            ahead = f"{self.forecast:,.0f} a week ahead"
            return f"{self.name}: new (next to nothing sold lately, {ahead})"
        return (
            f"{self.name}: {self.change:+.0%} "
            f"(80% band {self.change_lower:+.0%} to {self.change_upper:+.0%})"
        )

    def as_dict(self) -> dict:
        return {
            "product": self.product_id,
            "name": self.name,
            "sku": self.sku,
            "change": round(self.change, 4),
            "change_lower": round(self.change_lower, 4),
            "change_upper": round(self.change_upper, 4),
            "forecast_version": self.model_version_id,
            "recent": round(self.recent, 4),
            "forecast": round(self.forecast, 4),
        }


def rising_products(workspace_id: int, *, limit: int | None = 10) -> list[TrendingProduct]:
    """The active catalogue products whose weekly units the active forecast has rising (the
    whole 80% band of the change above zero), fastest first; empty before the first forecast."""
    version = active_version(workspace_id)
    if version is None:
        return []
    trends = ForecastTrend.objects.filter(
        workspace_id=workspace_id,
        model_version=version,
        level=Level.PRODUCT,
        measure=Measure.UNITS,
        frequency=Frequency.WEEK,
        direction=ForecastTrend.Direction.RISING,
    ).order_by("-change", "key")
    rows = list(
        trends.values_list("key", "change", "change_lower", "change_upper", "recent", "forecast")
    )
    # The "(other)" series and products deleted since the run have no catalogue row: left out.
    catalogue = {
        sku: (pk, name)
        for sku, pk, name in Product.objects.filter(
            workspace_id=workspace_id, active=True, sku__in=[row[0] for row in rows]
        ).values_list("sku", "pk", "name")
    }
    found = [
        TrendingProduct(*catalogue[sku], sku, change, lower, upper, version.pk, recent, forecast)
        for sku, change, lower, upper, recent, forecast in rows
        if sku in catalogue
    ]
    return found[:limit] if limit else found
