"""Demand and revenue forecasting: series from sales lines (panel), statistical and global
models chosen per series on a rolling-origin backtest (engine), reconciliation, conformal
intervals, reasons, and the trends a marketer reads (trends)."""

from marketing_ai.ml.forecast.engine import ForecastResult, fit_forecast
from marketing_ai.ml.forecast.panel import Panel, Split, build_panel, parse, series_id
from marketing_ai.ml.forecast.trends import trends

__all__ = [
    "ForecastResult",
    "Panel",
    "Split",
    "build_panel",
    "fit_forecast",
    "parse",
    "series_id",
    "trends",
]
