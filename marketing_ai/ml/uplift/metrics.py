"""How well an uplift score ranks customers, measured on a randomised test (treated = sent,
control = held out), as Radcliffe (2007) and scikit-uplift define the curves:

- the uplift curve at the top n (ranked by score): (treated responders / treated - control
  responders / control) among the top n, times n;
- the Qini curve at the top n: treated responders - control responders x treated / control
  among the top n (the control scaled to the treated's size);
- points where one group is still empty count as 0 in the curves (as scikit-uplift's do);
- each curve's area, normalised one of two ways (`normalise=`):
  - "causalml" (the default; causalml's `auuc_score` / `qini_score` with normalize=True since its
    #799, which made the random baseline the theoretical one): the curve divided by the size of
    its end point, then its mean over the N + 1 points; for the Qini coefficient minus the
    straight line's mean. A random ordering scores 0.5 (AUUC) and 0 (Qini); points where one
    group is still empty are interpolated, as causalml does;
  - "perfect" (scikit-uplift's `uplift_auc_score` / `qini_auc_score`, Radcliffe's q): (model -
    random) / (best ordering these outcomes allow - random): 1 the best, 0 random;
- uplift at k: the uplift among the top k share;
- bootstrap 95% intervals for each, resampling customers with replacement.

Ties in the score are broken by order of appearance (a stable sort), so the figures do not depend
on anything random.
"""

from dataclasses import dataclass

import numpy as np


def _arrays(y, treated, score):
    y, treated, score = (np.asarray(a) for a in (y, treated, score))
    if not (len(y) == len(treated) == len(score)) or not len(y):
        raise ValueError("y, treated and score must be non-empty and of one length")
    if not np.isin(treated, (0, 1)).all() or not np.isin(y, (0, 1)).all():
        raise ValueError("y and treated must be 0 or 1")
    if treated.all() or not treated.any():
        raise ValueError("both a treated and a control group are needed")
    return y.astype(float), treated.astype(float), score.astype(float)


def _counts(y, treated, order):
    """Cumulative counts down the ranking `order`: n, treated, control and their responders."""
    t, yy = treated[order], y[order]
    n_t = np.cumsum(t)
    n_c = np.cumsum(1 - t)
    y_t = np.cumsum(yy * t)
    y_c = np.cumsum(yy * (1 - t))
    return n_t, n_c, y_t, y_c


def _interpolated(points: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """The curve with its undefined points (a group still empty) filled in linearly between
    the defined ones, as pandas' interpolate does in causalml (the point at 0 is defined)."""
    defined = np.concatenate([[True], defined])
    if defined.all():
        return points
    at = np.arange(len(points))
    return np.interp(at, at[defined], points[defined])


def _uplift_points(y, treated, order, interpolate: bool = False):
    n_t, n_c, y_t, y_c = _counts(y, treated, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n_t > 0, y_t / n_t, 0.0) - np.where(n_c > 0, y_c / n_c, 0.0)
    rate = np.concatenate([[0.0], rate])
    if interpolate:  # causalml fills in the rate (its "lift"), then multiplies by n
        rate = _interpolated(rate, (n_t > 0) & (n_c > 0))
    return rate * np.arange(len(rate))


def _qini_points(y, treated, order, interpolate: bool = False):
    n_t, n_c, y_t, y_c = _counts(y, treated, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    points = np.concatenate([[0.0], y_t - scaled])
    return _interpolated(points, n_c > 0) if interpolate else points


def uplift_curve(y, treated, score) -> np.ndarray:
    """The uplift curve's points at n = 0 ... N."""
    y, treated, score = _arrays(y, treated, score)
    return _uplift_points(y, treated, np.argsort(-score, kind="stable"))


def qini_curve(y, treated, score) -> np.ndarray:
    """The Qini curve's points at n = 0 ... N."""
    y, treated, score = _arrays(y, treated, score)
    return _qini_points(y, treated, np.argsort(-score, kind="stable"))


def _perfect_score(points_of, y, treated) -> np.ndarray:
    """scikit-uplift's best possible score for these outcomes: for the Qini curve treated
    responders first and control responders last (the send lost them, in the best case); for
    the uplift curve its `perfect_uplift_curve`'s ordering."""
    if points_of is _qini_points:
        return y * treated - y * (1 - treated)
    lost = np.sum((y == 1) & (treated == 0)) > np.sum((y == 0) & (treated == 1))
    return 2 * (y == treated) + (y if lost else treated)


def _at_thresholds(points_of, y, treated, score):
    """(top n, curve) at each distinct score, highest first, ties taken together, from (0, 0):
    the points scikit-uplift's curves have."""
    order = np.argsort(score, kind="mergesort")[::-1]
    points = points_of(y, treated, order)
    ends = np.r_[np.flatnonzero(np.diff(score[order])), len(score) - 1] + 1
    x = np.r_[0, ends]
    return x, points[x]


def _normalised(points_of, y, treated, score) -> float:
    """(model - random) / (perfect - random), areas by the trapezoid rule over the thresholds."""
    x, curve = _at_thresholds(points_of, y, treated, score)
    px, pc = _at_thresholds(points_of, y, treated, _perfect_score(points_of, y, treated))
    random = np.trapezoid([0.0, pc[-1]], [0.0, px[-1]])
    spread = np.trapezoid(pc, px) - random
    if spread <= 0:
        return 0.0
    return float((np.trapezoid(curve, x) - random) / spread)


NORMALISATIONS = ("causalml", "perfect")


def _by_end(points: np.ndarray) -> np.ndarray:
    end = abs(points[-1])
    return points / end if end else points


def auuc(y, treated, score, normalise: str = "causalml") -> float:
    """The uplift (cumulative gain) curve's area, normalised: "causalml" 0.5 random;
    "perfect" 1 the best ordering, 0 random."""
    y, treated, score = _arrays(y, treated, score)
    if normalise == "perfect":
        return _normalised(_uplift_points, y, treated, score)
    order = np.argsort(-score, kind="stable")
    _check(normalise)
    return float(_by_end(_uplift_points(y, treated, order, interpolate=True)).mean())


def qini_coefficient(y, treated, score, normalise: str = "causalml") -> float:
    """The Qini curve's area above random, normalised: 0 random either way; "perfect" 1 the
    best ordering."""
    y, treated, score = _arrays(y, treated, score)
    if normalise == "perfect":
        return _normalised(_qini_points, y, treated, score)
    order = np.argsort(-score, kind="stable")
    _check(normalise)
    curve = _by_end(_qini_points(y, treated, order, interpolate=True))
    return float(curve.mean() - np.linspace(curve[0], curve[-1], len(curve)).mean())


def _check(normalise: str) -> None:
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise is one of {', '.join(NORMALISATIONS)}")


def uplift_at_k(y, treated, score, k: float = 0.3, strategy: str = "overall") -> float:
    """Response rate of the treated minus the control's among the top `k` share by score:
    of everyone ("overall"), or the top k of each group ranked apart ("by_group", as
    scikit-uplift's `uplift_at_k` with that strategy)."""
    y, treated, score = _arrays(y, treated, score)
    if not 0 < k <= 1:
        raise ValueError("k is a share from 0 (excluded) to 1")
    if strategy == "by_group":
        rates = []
        for group in (1, 0):
            rows = np.flatnonzero(treated == group)
            top = rows[np.argsort(-score[rows], kind="stable")][: max(1, int(k * len(rows)))]
            rates.append(y[top].mean())
        return float(rates[0] - rates[1])
    if strategy != "overall":
        raise ValueError("strategy is overall or by_group")
    top = np.argsort(-score, kind="stable")[: max(1, int(round(k * len(y))))]
    t, c = treated[top] == 1, treated[top] == 0
    if not t.any() or not c.any():
        return float("nan")  # the top k holds one group only: no uplift to measure there
    return float(y[top][t].mean() - y[top][c].mean())


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


def with_interval(metric, y, treated, score, *, rounds: int = 200, seed: int = 0, **kwargs):
    """`metric` on the data, with the 2.5th and 97.5th percentiles of it over `rounds` bootstrap
    resamples of customers (a resample with one group only, or where the metric is undefined, is
    drawn again, up to 20 x `rounds` draws; with fewer than half the rounds defined the interval
    is NaN to NaN: too little data to say)."""
    y, treated, score = _arrays(y, treated, score)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(20 * rounds):
        if len(draws) == rounds:
            break
        pick = rng.integers(0, len(y), len(y))
        if treated[pick].all() or not treated[pick].any():
            continue
        value = metric(y[pick], treated[pick], score[pick], **kwargs)
        if value == value:  # not nan
            draws.append(value)
    value = metric(y, treated, score, **kwargs)
    if len(draws) < rounds / 2:
        return Interval(value, float("nan"), float("nan"))
    low, high = np.percentile(draws, [2.5, 97.5])
    return Interval(value, float(low), float(high))
