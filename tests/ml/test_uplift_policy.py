"""The profit-chosen targeting policy: incremental profit, empirical-Bayes cell uplift, and the
choice of cells, rule and candidate by cross-validated profit."""

import numpy as np
import pytest

from marketing_ai.ml.uplift import policy
from marketing_ai.ml.uplift.policy import CellUplift, Feature


def world(n=20_000, seed=0):
    """Column 0 a 4-code categorical whose code 2 alone responds to the send (+6 points on a 2%
    base); column 1 noise; column 2 a continuous feature with no effect."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(0, 4, n), rng.integers(0, 3, n), rng.normal(size=n)])
    t = rng.integers(0, 2, n)
    p = 0.02 + 0.06 * t * (X[:, 0] == 2)
    return X.astype(float), t, (rng.random(n) < p).astype(int)


def test_incremental_profit_counts_the_promoted_only_with_the_control_scaled():
    y = np.array([1, 0, 0, 0, 1, 0, 1, 1])
    t = np.array([1, 1, 1, 1, 0, 0, 1, 0])
    promote = np.array([1, 1, 1, 1, 1, 0, 0, 0], bool)
    # promoted: 4 treated with 1 responder, 1 control with 1 responder (scaled x4)
    assert policy.incremental_profit(y, t, promote, value=10, cost=0.15) == pytest.approx(
        10 * (1 - 4) - 0.6
    )
    assert policy.incremental_profit(y, t, np.zeros(8, bool), value=10, cost=0.15) == 0


def test_cells_recover_the_planted_uplift_and_shrink_the_rest_together():
    X, t, y = world()
    model = CellUplift([Feature(0)]).fit(X, t, y)
    score = model.predict(np.array([[c, 0, 0.0] for c in range(4)]))
    assert score[2] == pytest.approx(0.06, abs=0.015)
    assert np.abs(np.delete(score, 2)).max() < 0.012
    # a finer level with no real spread keeps its parent's estimate
    finer = CellUplift([Feature(0), Feature(2, 4)]).fit(X, t, y)
    assert np.allclose(finer.predict(X[:50]), model.predict(X[:50]), atol=0.01)


def test_an_unseen_cell_gets_its_parents_estimate():
    X, t, y = world(5_000)
    model = CellUplift([Feature(0), Feature(1)]).fit(X, t, y)
    unseen = model.predict(np.array([[2.0, 7.0, 0.0], [9.0, 0.0, 0.0]]))
    assert unseen[0] == pytest.approx(model.levels[1][(2.0,)])
    assert unseen[1] == pytest.approx(model.overall)


def test_continuous_features_are_cut_at_training_quantiles():
    X, t, y = world(4_000)
    model = CellUplift([Feature(2, 3)]).fit(X, t, y)
    assert len(model.edges[0]) == 2
    assert set(np.searchsorted(model.edges[0], X[:, 2])) == {0, 1, 2}


def test_choose_cells_takes_the_feature_that_earns_and_stops():
    X, t, y = world()
    features, path = policy.choose_cells(
        X, t, y, [Feature(1), Feature(0), Feature(2, 3)], value=10, cost=0.15, draws=2
    )
    assert features[0] == Feature(0)
    assert path[0][0] == "(none)" and path[1][1] > path[0][1]


def test_choose_policy_promotes_the_customers_the_send_pays_for():
    X, t, y = world()
    chosen = policy.choose_policy(
        {
            "cells": policy.cells([Feature(0)]),
            "nothing": lambda X, t, y: lambda Z: np.zeros(len(Z)),
        },
        X, t, y, value=10, cost=0.15, draws=2,
    )  # fmt: skip
    assert chosen.name == "cells"
    assert set(chosen.validation) == {"cells", "nothing"}
    promote = chosen.promote(X)
    # code 2 earns 10 x 0.06 - 0.15 = $0.45 a send; the others lose $0.15
    assert promote[X[:, 0] == 2].mean() > 0.95
    assert promote[X[:, 0] != 2].mean() < 0.05


def test_a_learner_and_a_mean_of_fits_are_fits():
    X, t, y = world(6_000)
    both = policy.mean_of(policy.learner("logistic_t"), policy.cells([Feature(0)]))
    score = both(X, t, y)(X[:100])
    assert score.shape == (100,) and np.isfinite(score).all()
    validation = policy.cross_validate(both, X, t, y, value=10, cost=0.15, draws=1)
    assert validation.by_margin.shape == (len(policy.MARGINS),)
    assert validation.by_share.shape == (len(policy.SHARES),)
    assert validation.best()[0] in ("margin", "share")
