"""Accuracy of forecasts against what happened: MASE, scaled pinball loss, interval coverage.

The scale of a series is the mean absolute error of the in-sample seasonal naive on its history
before the origin (y_t - y_{t-season}). Where the history is not longer than a season, or the
seasonal naive's error is zero there (a product that had not started a season ago), the lag-one
naive's is used instead; a series with neither (no demand at all before the origin) is left out
of the averages. As M5 does, a series' history counts from its first sale: the weeks before a
product existed would otherwise shrink its scale and inflate its error. Per series the scaled
errors are averaged over its origins and steps; the figure is the mean over series.
"""

import warnings

import numpy as np

QUANTILES = (0.1, 0.5, 0.9)


def scale(history: np.ndarray, season: int) -> np.ndarray:
    """history: series x periods up to the origin. Returns one scale per series (NaN: none)."""
    history = np.asarray(history, dtype=float)
    out = np.full(history.shape[0], np.nan)
    for i, row in enumerate(history):
        started = np.flatnonzero(row != 0)
        if len(started) == 0:
            continue
        row = row[started[0] :]
        if len(row) > season:
            seasonal = np.abs(row[season:] - row[:-season]).mean()
            if seasonal > 0:
                out[i] = seasonal
                continue
        if len(row) > 1:
            naive = np.abs(np.diff(row)).mean()
            if naive > 0:
                out[i] = naive
    return out


def pinball(actual: np.ndarray, quantile_forecast: np.ndarray, q: float) -> np.ndarray:
    diff = actual - quantile_forecast
    return np.maximum(q * diff, (q - 1) * diff)


def score(
    actual: np.ndarray,
    mean: np.ndarray,
    scales: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict[str, float]:
    """Arrays series x origins x steps (actual NaN where not observed); scales series x
    origins. The 10% and 90% quantiles are the 80% band's ends, the 50% is the mean."""
    weight = 1.0 / scales[:, :, None]
    valid = ~np.isnan(actual) & np.isfinite(weight)

    def per_series(values: np.ndarray) -> float:
        masked = np.where(valid, values * weight, np.nan)
        counted = valid.any(axis=(1, 2))
        if not counted.any():
            return float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a series without a band
            return float(np.nanmean(np.nanmean(masked[counted], axis=(1, 2))))

    out = {"mase": per_series(np.abs(actual - mean)), "series": float(valid.any(axis=(1, 2)).sum())}
    if lower is not None and upper is not None:
        out["pinball10"] = per_series(pinball(actual, lower, 0.1))
        out["pinball50"] = per_series(pinball(actual, mean, 0.5))
        out["pinball90"] = per_series(pinball(actual, upper, 0.9))
        # a band only where the model gave one (a per-series choice may pick one without)
        observed = ~np.isnan(actual) & np.isfinite(lower) & np.isfinite(upper)
        inside = (actual >= lower) & (actual <= upper)
        out["coverage80"] = float(inside[observed].mean()) if observed.any() else float("nan")
    return out
