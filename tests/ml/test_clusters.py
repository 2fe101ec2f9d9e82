"""Clustering recovers planted groups and describes them in words."""

import numpy as np

from marketing_ai.ml.segment import clusters


def planted(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 300
    group = np.repeat([0, 1, 2], n // 3)
    spend = np.where(group == 0, rng.normal(2000, 200, n), rng.normal(80, 15, n)).clip(5)
    orders = np.where(group == 0, rng.integers(15, 30, n), rng.integers(1, 3, n))
    recency = np.where(group == 2, rng.integers(200, 300, n), rng.integers(1, 20, n))
    tenure = recency + rng.integers(100, 400, n)
    taste = np.zeros((n, 16))
    taste[group == 1, 0] = 1.0  # group 1 buys candles
    taste[group != 1, 1] = 1.0
    taste += rng.normal(0, 0.05, taste.shape)
    names = [
        ["SCENTED CANDLE", "CANDLE HOLDER"] if g == 1 else ["OWL MUG", "TEA CUP"] for g in group
    ]
    behaviour = clusters.CustomerBehaviour(
        ids=np.arange(n), spend=spend, orders=orders, recency_days=recency, tenure_days=tenure
    )
    return group, behaviour, taste, names


def test_recovers_planted_groups_and_names_them():
    group, behaviour, taste, names = planted()
    result = clusters.fit(behaviour, taste, names, k_range=range(2, 6))
    assert result.k == 3
    # Each planted group lands in one cluster.
    for g in range(3):
        assert len(set(result.labels[group == g])) == 1
    by_group = {g: result.descriptions[result.labels[group == g][0]] for g in range(3)}
    assert "high spend" in by_group[0] and "frequent buyers" in by_group[0]
    assert "candle" in by_group[1]
    assert "lapsed 180+ days" in by_group[2]
    assert sum(result.sizes) == len(group) and len(set(result.descriptions)) == 3
