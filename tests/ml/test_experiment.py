"""Interval methods: known values and coverage by simulation."""

import numpy as np
import pytest

from marketing_ai.ml import experiment


def test_wilson_matches_the_textbook_example():
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662 (score method).
    low, high = experiment.wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-4) and high == pytest.approx(0.3662, abs=5e-4)
    assert experiment.wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


def test_newcombe_difference_matches_the_paper():
    # Newcombe (1998), table II example: 56/70 vs 48/80 -> 0.0524 to 0.3339 (method 10).
    low, high = experiment.difference_interval(56, 70, 48, 80)
    assert low == pytest.approx(0.0524, abs=5e-4) and high == pytest.approx(0.3339, abs=5e-4)


@pytest.mark.parametrize(("p_a", "p_b", "n"), [(0.05, 0.03, 400), (0.3, 0.3, 120)])
def test_difference_interval_covers_the_truth_about_95_percent(p_a, p_b, n):
    rng = np.random.default_rng(1)
    hits_a, hits_b = rng.binomial(n, p_a, 4000), rng.binomial(n, p_b, 4000)
    covered = [
        lo <= p_a - p_b <= hi
        for lo, hi in (
            experiment.difference_interval(a, n, b, n) for a, b in zip(hits_a, hits_b, strict=True)
        )
    ]
    assert 0.93 < np.mean(covered) < 0.975


def test_mean_intervals():
    values = np.array([0, 0, 10, 20, 0, 5.5])
    low, high = experiment.mean_interval(values.sum(), (values**2).sum(), len(values))
    assert low < values.mean() < high
    a, b = (values.sum(), (values**2).sum(), 6), (0.0, 0.0, 6)
    low, high = experiment.mean_difference_interval(a, b)
    assert low < values.mean() < high
