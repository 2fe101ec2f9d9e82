"""Making a split's children add up to its total: bottom-up, or MinT with the shrunk covariance
of the base forecasts' errors (Wickramasuriya, Athanasopoulos & Hyndman 2019; the Schäfer-Strimmer
shrinkage towards the diagonal, as R's hts and hierarchicalforecast's `mint_shrink` do).

A measure can have several splits of one total (products, countries, groups). The first split
(products where there are any) is reconciled with the total; the others are then fitted to that
reconciled total, each child moved in proportion to its error variance (MinT with the total held
fixed). Negative children are set to zero and the rest refitted, so demand never goes below zero.
"""

import numpy as np

from marketing_ai.ml.forecast.panel import Split


def shrunk_covariance(residuals: np.ndarray, ridge: float = 2e-8) -> np.ndarray:
    """residuals: observations x series (rows with a NaN are dropped). Returns the sample
    covariance shrunk towards its diagonal by the Schäfer-Strimmer intensity: the summed
    estimated variance of the off-diagonal correlations over their summed squares."""
    x = residuals[~np.isnan(residuals).any(axis=1)]
    n = x.shape[0]
    centred = x - x.mean(axis=0)
    covariance = centred.T @ centred / (n - 1)
    sd = np.sqrt(np.diag(covariance))
    standard = centred / np.where(sd > 0, sd, 1.0)
    products = standard.T @ standard / n  # mean of x_ki x_kj over observations k
    correlation = products * n / (n - 1)
    spread = (standard**2).T @ (standard**2) - n * products**2
    variance = spread * n / (n - 1) ** 3
    off = ~np.eye(len(covariance), dtype=bool)
    denominator = np.sum(correlation[off] ** 2)
    shrink = 1.0 if denominator == 0 else float(np.clip(variance[off].sum() / denominator, 0, 1))
    w = shrink * np.diag(np.diag(covariance)) + (1 - shrink) * covariance
    return w + ridge * np.eye(len(w))


def mint(total: np.ndarray, children: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MinT for one total over its children: total (h,), children (m, h), w (m+1, m+1) ordered
    total first. Projects onto total = sum(children) along W: y - W u (u'y) / (u'W u) with u the
    constraint [1, -1, ..., -1]."""
    stacked = np.vstack([total[None, :], children])
    u = np.concatenate([[1.0], -np.ones(len(children))])
    gap = u @ stacked  # (h,) how far the base forecasts are from adding up
    wu = w @ u
    adjusted = stacked - np.outer(wu, gap / (u @ wu))
    return adjusted[0], adjusted[1:]


def fit_to_total(total: np.ndarray, children: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Children (m, h) moved so they add up to total (h,), each in proportion to its weight
    (error variance), none below zero."""
    out = children.astype(float).copy()
    weights = np.where(np.asarray(weights, dtype=float) > 0, weights, 1e-12)
    for step in range(out.shape[1]):
        free = np.ones(len(out), dtype=bool)
        column = out[:, step]
        target = max(float(total[step]), 0.0)
        for _ in range(len(out) + 1):
            gap = target - column.sum()
            share = np.where(free, weights, 0.0)
            if share.sum() <= 0:
                # every child pinned at zero: spread what is left over them equally
                column = column + gap / len(column)
                break
            column = column + share / share.sum() * gap
            negative = column < 0
            if not negative.any():
                break
            column[negative] = 0.0
            free &= ~negative
        out[:, step] = column
    return out


def reconcile(
    forecasts: dict[str, np.ndarray],
    hierarchy: list[Split],
    residuals: dict[str, np.ndarray] | None = None,
    method: str = "mint_shrink",
) -> dict[str, np.ndarray]:
    """forecasts: {unique_id: mean (h,)}; residuals: {unique_id: backtest errors}, the same
    observations in the same order for every series (needed by mint_shrink). Returns the
    forecasts with every split adding up to its total."""
    if method not in ("mint_shrink", "bottom_up"):
        raise ValueError(f"unknown reconciliation method {method!r}")
    out = dict(forecasts)
    by_total: dict[str, list[Split]] = {}
    for split in hierarchy:
        by_total.setdefault(split.total, []).append(split)
    for total, splits in by_total.items():
        splits = sorted(splits, key=lambda s: s.level != "product")
        first = splits[0]
        children = np.vstack([forecasts[c] for c in first.children])
        variances = _variances([total, *first.children], residuals)
        if method == "bottom_up" or residuals is None:
            reconciled_total = children.sum(axis=0)
            reconciled_children = children
        else:
            block = np.column_stack([residuals[i] for i in [total, *first.children]])
            reconciled_total, reconciled_children = mint(
                forecasts[total], children, shrunk_covariance(block)
            )
            reconciled_total = np.maximum(reconciled_total, 0.0)
        reconciled_children = fit_to_total(reconciled_total, reconciled_children, variances[1:])
        out[total] = reconciled_children.sum(axis=0)
        out.update(zip(first.children, reconciled_children, strict=True))
        for split in splits[1:]:
            children = np.vstack([forecasts[c] for c in split.children])
            weights = _variances(list(split.children), residuals)
            fitted = fit_to_total(out[total], children, weights)
            out.update(zip(split.children, fitted, strict=True))
    return out


def _variances(ids: list[str], residuals: dict[str, np.ndarray] | None) -> np.ndarray:
    if residuals is None:
        return np.ones(len(ids))
    return np.array([np.nanmean(residuals[i] ** 2) if len(residuals[i]) else 1.0 for i in ids])
