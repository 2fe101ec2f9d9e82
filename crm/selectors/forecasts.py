"""Reads of the stored forecasts: the version that speaks for a workspace now, and the series
forecast to rise or slow."""

from crm.models import ForecastTrend
from crm.models.forecasts import Level, Measure
from workers.models import ModelVersion

FAMILY = "forecast"


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
