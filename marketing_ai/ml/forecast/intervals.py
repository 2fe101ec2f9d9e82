"""Prediction intervals from the backtest's errors (split conformal): the band around a
forecast is the 10% and 90% quantiles of the signed errors the same pipeline made at the earlier
origins, each error divided by its series' recent level so that series of different sizes pool.

Errors pool by kind of series: products that sell most weeks, intermittent products, and each
aggregate level on its own (total, countries, groups), so the total is not calibrated on the
errors of noisy groups. Within a pool the steps ahead pool too: each error is divided by its
step's spread (step ** b with b in [0, 1] fitted to the pool's errors; the square root of the
step where a pool has under MIN_PER_STEP errors at a step), and the band is the pooled
quantiles times that spread. Per-step quantiles from four origins
followed one calendar week each (Online Retail II: the step that landed on early January doubled
every band's upper edge), and a band that narrows further ahead is not believable.
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


def _spread(block: np.ndarray) -> np.ndarray:
    """How the pool's errors grow with the step, 1 at the first: step ** b, b fitted to the
    median absolute error per step (log on log, weighted by the errors seen) and kept in
    [0, 1], so one wild step moves the whole curve a little instead of its own step a lot."""
    steps = np.arange(1, block.shape[2] + 1)
    counts = np.isfinite(block).sum(axis=(0, 1))
    if counts.min() < MIN_PER_STEP:
        return np.sqrt(steps)
    with np.errstate(invalid="ignore"):
        typical = np.nanmedian(np.abs(block), axis=(0, 1))
    if len(steps) < 2 or not (np.isfinite(typical).all() and (typical > 0).all()):
        return np.sqrt(steps)
    slope = np.polyfit(np.log(steps), np.log(typical), 1, w=np.sqrt(counts))[0]
    return steps ** float(np.clip(slope, 0.0, 1.0))


def calibrate(
    errors: np.ndarray, pools: np.ndarray, level: float = 80
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """errors: series x origins x steps, signed (actual - forecast) / series level, NaN where
    not observed; pools: a pool name per series. Returns {pool: (lower, upper)} per step, in
    units of the series' level; upper - lower never decreases with the step."""
    out = {}
    for pool in np.unique(pools):
        block = errors[pools == pool]
        spread = _spread(block)
        lo, hi = _quantiles((block / spread).ravel(), level)
        out[pool] = (min(lo, 0.0) * spread, max(hi, 0.0) * spread)
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
