"""Prediction intervals from the backtest's errors (split conformal): the band around a
forecast is the 10% and 90% quantiles of the signed errors the same pipeline made at the earlier
origins, each error divided by its series' recent level so that series of different sizes pool.

Errors pool by kind of series (products that sell most weeks, intermittent products, and the
aggregates: total, countries, groups) and by step ahead where a pool has at least MIN_PER_STEP
errors at each step; a smaller pool (the handful of aggregates) pools its steps too, each error
divided by the square root of its step, and the band widens again by that root.
"""

import numpy as np

MIN_PER_STEP = 50


def _quantiles(errors: np.ndarray, level: float) -> tuple[float, float]:
    errors = errors[np.isfinite(errors)]
    if len(errors) == 0:
        return 0.0, 0.0
    tail = (1 - level / 100) / 2
    n = len(errors)
    # the finite-sample correction of split conformal: the (n+1)-quantile, not the n-quantile
    hi = min(1.0, np.ceil((n + 1) * (1 - tail)) / n)
    lo = max(0.0, (np.floor((n + 1) * tail) - 1) / n) if n > 1 else 0.0
    return float(np.quantile(errors, lo, method="lower")), float(
        np.quantile(errors, hi, method="higher")
    )


def calibrate(
    errors: np.ndarray, pools: np.ndarray, level: float = 80
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """errors: series x origins x steps, signed (actual - forecast) / series level, NaN where
    not observed; pools: a pool name per series. Returns {pool: (lower, upper)} per step, in
    units of the series' level."""
    steps = errors.shape[2]
    out = {}
    root = np.sqrt(np.arange(1, steps + 1))
    for pool in np.unique(pools):
        block = errors[pools == pool]
        counts = np.isfinite(block).sum(axis=(0, 1))
        if counts.min() >= MIN_PER_STEP:
            bounds = [_quantiles(block[:, :, k].ravel(), level) for k in range(steps)]
            out[pool] = (np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds]))
        else:
            lo, hi = _quantiles((block / root).ravel(), level)
            out[pool] = (lo * root, hi * root)
    return out


def band(
    mean: np.ndarray, levels: np.ndarray, pools: np.ndarray, table: dict
) -> tuple[np.ndarray, np.ndarray]:
    """mean: series x steps; levels: each series' recent level. The band, never below zero and
    always holding the mean."""
    lower = np.empty_like(mean)
    upper = np.empty_like(mean)
    for i, pool in enumerate(pools):
        lo, hi = table.get(pool, (np.zeros(mean.shape[1]), np.zeros(mean.shape[1])))
        lower[i] = mean[i] + lo[: mean.shape[1]] * levels[i]
        upper[i] = mean[i] + hi[: mean.shape[1]] * levels[i]
    lower = np.clip(np.minimum(lower, mean), 0, None)
    upper = np.maximum(upper, mean)
    return lower, upper
