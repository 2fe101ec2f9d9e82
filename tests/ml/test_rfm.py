import numpy as np

from marketing_ai.ml.segment.rfm import GROUPS, quintile_scores, rfm


def test_quintiles_rank_within_the_shop():
    scores = quintile_scores(np.arange(10))
    assert list(scores) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(quintile_scores(np.arange(10), higher_is_better=False)) == list(scores[::-1])


def test_every_customer_gets_one_named_group():
    rng = np.random.default_rng(0)
    out = rfm(rng.integers(0, 700, 500), rng.integers(1, 30, 500), rng.gamma(2, 200, 500))
    names = {name for name, _ in GROUPS}
    assert set(out["group"]) <= names and all(out["group"])
    best = np.argmax(out["r"] * 10 + out["f"] + out["m"])
    assert out["group"][best] == "Champions"
