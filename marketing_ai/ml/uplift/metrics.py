"""How well an uplift score ranks customers, measured on a randomised test (treated = sent,
control = held out), as Radcliffe (2007) and scikit-uplift define the curves:

- the uplift curve at the top n (ranked by score): (treated responders / treated - control
  responders / control) among the top n, times n;
- the Qini curve at the top n: treated responders - control responders x treated / control
  among the top n (the control scaled to the treated's size);
- each curve's area, normalised as (model - random) / (perfect - random): 1 for the best
  ordering these outcomes allow, 0 for a random one (AUUC from the uplift curve, the Qini
  coefficient from the Qini curve), and uplift at k: the uplift among the top k share;
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


def _uplift_points(y, treated, order):
    n_t, n_c, y_t, y_c = _counts(y, treated, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n_t > 0, y_t / n_t, 0.0) - np.where(n_c > 0, y_c / n_c, 0.0)
    return np.concatenate([[0.0], rate * (n_t + n_c)])


def _qini_points(y, treated, order):
    n_t, n_c, y_t, y_c = _counts(y, treated, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    return np.concatenate([[0.0], y_t - scaled])


def uplift_curve(y, treated, score) -> np.ndarray:
    """The uplift curve's points at n = 0 ... N."""
    y, treated, score = _arrays(y, treated, score)
    return _uplift_points(y, treated, np.argsort(-score, kind="stable"))


def qini_curve(y, treated, score) -> np.ndarray:
    """The Qini curve's points at n = 0 ... N."""
    y, treated, score = _arrays(y, treated, score)
    return _qini_points(y, treated, np.argsort(-score, kind="stable"))


def _area(points: np.ndarray) -> float:
    return float(np.sum((points[1:] + points[:-1]) / 2))


def _random_area(points: np.ndarray) -> float:
    """The area of the straight line from (0, 0) to the curve's end: a random ordering."""
    return float(points[-1] * (len(points) - 1) / 2)


def _perfect_order(y, treated):
    """The best ordering the outcomes allow: treated responders and control non-responders
    first, then treated non-responders, then control responders (who were lost by the send
    in the best case, so the curve's peak is highest)."""
    key = np.where(treated == 1, np.where(y == 1, 0, 2), np.where(y == 1, 3, 1))
    return np.argsort(key, kind="stable")


def _normalised(points_of, y, treated, order) -> float:
    model = points_of(y, treated, order)
    perfect = points_of(y, treated, _perfect_order(y, treated))
    spread = _area(perfect) - _random_area(perfect)
    if spread <= 0:
        return 0.0
    return (_area(model) - _random_area(model)) / spread


def auuc(y, treated, score) -> float:
    """The uplift curve's area, normalised: 1 the best ordering, 0 random."""
    y, treated, score = _arrays(y, treated, score)
    return _normalised(_uplift_points, y, treated, np.argsort(-score, kind="stable"))


def qini_coefficient(y, treated, score) -> float:
    """The Qini curve's area, normalised: 1 the best ordering, 0 random."""
    y, treated, score = _arrays(y, treated, score)
    return _normalised(_qini_points, y, treated, np.argsort(-score, kind="stable"))


def uplift_at_k(y, treated, score, k: float = 0.3) -> float:
    """Response rate of the treated minus the control's among the top `k` share by score."""
    y, treated, score = _arrays(y, treated, score)
    if not 0 < k <= 1:
        raise ValueError("k is a share from 0 (excluded) to 1")
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
    resamples of customers (a resample with one group only is drawn again)."""
    y, treated, score = _arrays(y, treated, score)
    rng = np.random.default_rng(seed)
    draws = []
    while len(draws) < rounds:
        pick = rng.integers(0, len(y), len(y))
        if treated[pick].all() or not treated[pick].any():
            continue
        value = metric(y[pick], treated[pick], score[pick], **kwargs)
        if value == value:  # not nan
            draws.append(value)
    low, high = np.percentile(draws, [2.5, 97.5])
    return Interval(metric(y, treated, score, **kwargs), float(low), float(high))
