"""marketing_ai.ml.uplift.metrics: the curves by hand on four customers, and on a simulated test
whose true uplift is known: the true ordering scores high, a random one near zero, the best
ordering the outcomes allow exactly one."""

import math

import numpy as np
import pytest

from marketing_ai.ml.uplift import metrics

# Ranked by score: a treated responder, a treated non-responder, a control responder, a control
# non-responder.
Y, T, S = [1, 0, 1, 0], [1, 1, 0, 0], [4, 3, 2, 1]


def test_the_curves_by_hand():
    assert metrics.qini_curve(Y, T, S).tolist() == [0, 1, 1, -1, 0]
    assert metrics.uplift_curve(Y, T, S).tolist() == [0, 1, 1, -1.5, 0]
    assert metrics.uplift_at_k(Y, T, S, k=1.0) == 0.0
    assert math.isnan(metrics.uplift_at_k(Y, T, S, k=0.5))  # the top half is all treated


def simulated(n: int = 20_000, seed: int = 1):
    """Half sent; a base response of 10%; the message adds 20 points to those with x > 0.5
    and takes 5 from the rest (do-not-disturbs)."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    treated = rng.integers(0, 2, n)
    effect = np.where(x > 0.5, 0.20, -0.05)
    y = (rng.random(n) < 0.10 + treated * effect).astype(int)
    return y, treated, x, effect


def test_the_true_ordering_scores_high_a_random_one_near_zero_the_best_one_exactly_one():
    """On the causalml scale a random ordering scores 0 (Qini) and 0.5 (AUUC); on the
    "perfect" scale (scikit-uplift's) 0, and the best ordering exactly 1."""
    y, treated, x, effect = simulated()
    random_score = np.random.default_rng(2).random(len(y))
    assert abs(metrics.auuc(y, treated, random_score) - 0.5) < 0.05  # causalml's: 0.5 random
    for metric in (metrics.qini_coefficient,):
        # Against the best ordering of these very outcomes (noise included), a true ordering of
        # a 20-point uplift reaches a fraction: well clear of random, far from one.
        true = metric(y, treated, effect + x * 1e-9)
        assert 0.1 < true < 1, metric.__name__
        assert abs(metric(y, treated, random_score)) < true / 3, metric.__name__
    for points, metric in ((metrics._qini_points, metrics.qini_coefficient),
                           (metrics._uplift_points, metrics.auuc)):  # fmt: skip
        best = metrics._perfect_score(points, y, treated)
        assert metric(y, treated, best, normalise="perfect") == pytest.approx(1.0)
        assert abs(metric(y, treated, random_score, normalise="perfect")) < 0.05
    assert metrics.uplift_at_k(y, treated, effect + x * 1e-9, k=0.5) == pytest.approx(0.2, abs=0.03)


def test_intervals_hold_the_figure_and_narrow_with_more_customers():
    y, treated, x, effect = simulated(4_000)
    small = metrics.with_interval(metrics.qini_coefficient, y, treated, effect, rounds=100)
    assert small.low < small.value < small.high
    y, treated, x, effect = simulated(16_000)
    large = metrics.with_interval(metrics.qini_coefficient, y, treated, effect, rounds=100)
    assert large.high - large.low < small.high - small.low
    at_k = metrics.with_interval(metrics.uplift_at_k, y, treated, effect, rounds=50, k=0.3)
    assert at_k.low < 0.2 < at_k.high


@pytest.mark.parametrize(
    ("y", "treated", "score"),
    [([], [], []), ([1, 0], [1, 1], [1, 2]), ([1, 2], [1, 0], [1, 2]), ([1], [1, 0], [1, 2])],
)
def test_bad_input_is_a_clear_error(y, treated, score):
    with pytest.raises(ValueError):
        metrics.qini_coefficient(y, treated, score)


def test_the_same_figures_as_causalml_and_scikit_uplift_on_the_same_data():
    """Our Qini coefficient and AUUC equal causalml's `qini_score` / `auuc_score` (normalize=True,
    as since its #799) and, normalised to the best ordering, scikit-uplift's `qini_auc_score` /
    `uplift_auc_score`, on a simulated test and on a model's scores (no ties)."""
    import pandas as pd
    from causalml.metrics import auuc_score, qini_score
    from sklift.metrics import qini_auc_score, uplift_auc_score

    y, treated, x, effect = simulated(6_000, seed=4)
    for score in (x + np.random.default_rng(5).normal(0, 0.3, len(x)), -x):
        frame = pd.DataFrame({"y": y, "w": treated, "model": score})
        assert metrics.qini_coefficient(y, treated, score) == pytest.approx(
            qini_score(frame)["model"], abs=1e-12
        )
        assert metrics.auuc(y, treated, score) == pytest.approx(
            auuc_score(frame)["model"], abs=1e-12
        )
        assert metrics.qini_coefficient(y, treated, score, normalise="perfect") == pytest.approx(
            qini_auc_score(y, score, treated), abs=1e-12
        )
        assert metrics.auuc(y, treated, score, normalise="perfect") == pytest.approx(
            uplift_auc_score(y, score, treated), abs=1e-12
        )
    with pytest.raises(ValueError):
        metrics.qini_coefficient(y, treated, x, normalise="mine")
