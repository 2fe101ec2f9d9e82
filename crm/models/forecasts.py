"""What the forecasting models say about demand: each series' next periods with their band, how
its next weeks compare with its recent level, and the periods whose actuals left the band.

A series is one measure (units or revenue) at one level: the workspace's total, a country, a
product, or a group of products. Rows belong to the model version that made them, so a rolled-back
forecast brings its own numbers back and a drift alert names the version it caught out."""

from django.db import models

from crm.models.workspaces import Workspace


class Level(models.TextChoices):
    TOTAL = "total"
    COUNTRY = "country"
    PRODUCT = "product"
    GROUP = "group"


class Measure(models.TextChoices):
    UNITS = "units"
    REVENUE = "revenue"


class Frequency(models.TextChoices):
    WEEK = "week"
    DAY = "day"


class SeriesFields(models.Model):
    """The fields that name one series of one forecast run."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        "workers.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    level = models.CharField(max_length=10, choices=Level.choices)
    # The product's SKU, the country's name, the group's number; empty for the total.
    key = models.CharField(max_length=200, blank=True)
    measure = models.CharField(max_length=10, choices=Measure.choices)
    frequency = models.CharField(max_length=5, choices=Frequency.choices, default=Frequency.WEEK)

    class Meta:
        abstract = True


class Forecast(SeriesFields):
    """One series' forecast for one period (a week starting on Monday, or a day)."""

    period_start = models.DateField()
    mean = models.FloatField()
    lower = models.FloatField(help_text="lower end of the 80% prediction interval")
    upper = models.FloatField(help_text="upper end of the 80% prediction interval")
    # The mean's parts in the measure's own units: {"level", "trend", "seasonality", "holiday",
    # "promotion"} (a part the model has not got is left out).
    reasons = models.JSONField(default=dict, blank=True)
    model = models.CharField(max_length=50, help_text="the model or ensemble chosen for the series")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "level", "key", "measure", "frequency", "period_start"],
                name="forecast_unique_period",
            )
        ]
        indexes = [
            models.Index(
                fields=["workspace", "level", "key", "measure", "frequency", "period_start"],
                name="forecast_series",
            )
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.key} {self.measure} {self.period_start}: {self.mean:.4g}"


class ForecastTrend(SeriesFields):
    """A series' forecast over the horizon against its recent level, per period: rising or slowing
    only when the whole 80% band of the change lies on one side of zero, otherwise steady."""

    class Direction(models.TextChoices):
        RISING = "rising"
        STEADY = "steady"
        SLOWING = "slowing"

    recent = models.FloatField(help_text="actual mean per period over the recent periods")
    forecast = models.FloatField(help_text="forecast mean per period over the horizon")
    change = models.FloatField(help_text="forecast / recent - 1")
    change_lower = models.FloatField()
    change_upper = models.FloatField()
    direction = models.CharField(max_length=10, choices=Direction.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "level", "key", "measure", "frequency"],
                name="forecasttrend_unique_series",
            )
        ]
        indexes = [
            models.Index(
                fields=["workspace", "level", "measure", "direction", "change"],
                name="forecasttrend_direction",
            )
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.key} {self.measure} {self.direction} {self.change:+.0%}"


class ForecastAlert(SeriesFields):
    """A completed period whose actual fell outside the 80% band the version forecast for it."""

    period_start = models.DateField()
    actual = models.FloatField()
    mean = models.FloatField()
    lower = models.FloatField()
    upper = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "level", "key", "measure", "frequency", "period_start"],
                name="forecastalert_unique_period",
            )
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="forecastalert_recent")]

    def __str__(self) -> str:
        side = "above" if self.actual > self.upper else "below"
        return f"{self.level} {self.key} {self.measure} {self.period_start}: {side} the band"
