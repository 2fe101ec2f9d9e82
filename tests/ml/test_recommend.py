"""Recommenders and their evaluation, on small data made here (no database)."""

import numpy as np
import pytest

from marketing_ai.ml import datasets, evaluate, recommend


def two_tastes(n_users: int = 40, seed: int = 0) -> datasets.Interactions:
    """Users 0..19 like items 0..9, users 20..39 like items 10..19; each sees 6 of their 10."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        group = 0 if u < n_users // 2 else 10
        for i in rng.choice(10, size=6, replace=False):
            users.append(u)
            items.append(group + i)
    return datasets.from_arrays(users, items, times=np.arange(len(users)))


class FixedScores:
    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float64)

    def score(self, users):
        return self.scores[users]


def test_metrics_by_hand():
    # 1 user, 5 items; truth = {1, 3}; ranking 3 > 0 > 1 > ... with item 4 already seen
    def rows(items):
        n = len(items)
        return datasets.Interactions(
            np.zeros(n, np.int32), np.array(items, np.int32), np.zeros(n), 1, 5,
            np.arange(1), np.arange(5),
        )  # fmt: skip

    truth, seen = rows([1, 3]), rows([4]).matrix()
    model = FixedScores([[0.8, 0.5, 0.1, 0.9, 1.0]])
    m = evaluate.evaluate(model, seen, truth, k=2)
    assert m.recall == pytest.approx(0.5)  # top-2 = {3, 0}: one of two found
    assert m.ndcg == pytest.approx(1.0 / (1.0 + 1.0 / np.log2(3)))
    m3 = evaluate.evaluate(model, seen, truth, k=3)
    assert m3.recall == pytest.approx(1.0)
    assert m3.ndcg == pytest.approx((1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3)))


def test_random_split_is_per_user_and_reproducible():
    data = two_tastes()
    split = evaluate.split_random(data, seed=1)
    assert len(split.train) + len(split.valid) + len(split.test) == len(data)
    for part in (split.valid, split.test):  # 6 rows → 4 / 1 / 1 per user (small-group rule)
        assert np.array_equal(np.bincount(part.users, minlength=40), np.ones(40))
    pairs = {tuple(p) for s in split.__dict__.values() for p in zip(s.users, s.items, strict=True)}
    assert len(pairs) == len(data)
    again = evaluate.split_random(data, seed=1)
    assert np.array_equal(again.test.items, split.test.items)
    assert evaluate._cut_sizes(100, (0.8, 0.1, 0.1)) == [80, 10, 10]


def test_leave_one_out_takes_the_latest():
    data = datasets.from_arrays([0, 0, 0, 0, 1, 1], [5, 6, 7, 8, 1, 2], times=[4, 1, 3, 2, 1, 2])
    split = evaluate.split_leave_one_out(data)
    label = data.item_labels
    assert list(label[split.test.items]) == [5] and list(label[split.valid.items]) == [7]
    assert sorted(label[split.train.items]) == [1, 2, 6, 8]  # user 1 has too few: all train


@pytest.mark.parametrize(
    "name,params",
    [("ease", {"l2": 10.0}), ("itemknn", {"k": 5}), ("als", {"factors": 4, "iterations": 10})],
)
def test_models_recommend_from_the_users_own_taste(name, params):
    data = two_tastes()
    model = recommend.create(name, **params).fit(data.matrix())
    scores = model.score(np.arange(40))
    seen = data.matrix().toarray() > 0
    scores[seen] = -np.inf
    best = scores.argmax(axis=1)
    assert np.all(best[:20] < 10) and np.all(best[20:] >= 10)


def test_popular_ranks_by_count_and_evaluates():
    data = datasets.from_arrays([0, 1, 2, 0, 1, 0], [7, 7, 7, 8, 8, 9])
    model = recommend.create("popular").fit(data.matrix())
    assert list(np.argsort(-model.score(np.array([0]))[0])) == [0, 1, 2]
    split = evaluate.split_random(two_tastes())
    m = evaluate.evaluate(recommend.create("ease", l2=10.0).fit(split.train.matrix()),
                          split.train.matrix(), split.test, k=5)  # fmt: skip
    pop = evaluate.evaluate(recommend.create("popular").fit(split.train.matrix()),
                            split.train.matrix(), split.test, k=5)  # fmt: skip
    assert m.recall > pop.recall and m.users == 40


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown recommender"):
        recommend.create("magic")
    assert recommend.names() == ["als", "ease", "itemknn", "popular", "sasrec"]


def test_k_larger_than_the_catalogue():
    data = two_tastes()
    split = evaluate.split_random(data)
    model = recommend.create("popular").fit(split.train.matrix())
    m = evaluate.evaluate(model, split.train.matrix(), split.test, k=50)
    assert m.recall == pytest.approx(1.0)  # everything unseen is ranked


def test_sasrec_learns_an_order_the_matrix_models_cannot_see():
    """Every user walks the catalogue in steps of one from a random start: the next item is
    fully determined by the last one, which only a sequential model can use."""
    import numpy as np

    from marketing_ai.ml import datasets, evaluate
    from marketing_ai.ml.recommend import SEQUENTIAL, create

    rng = np.random.default_rng(0)
    n_items, users, items, times = 30, [], [], []
    for u in range(200):
        start, length = rng.integers(n_items), rng.integers(6, 12)
        for step in range(length):
            users.append(u)
            items.append((start + step) % n_items)
            times.append(step)
    data = datasets.from_arrays(users, items, times)
    split = evaluate.split_leave_one_out(data)
    model = create("sasrec", hidden=32, layers=1, heads=1, max_len=12, epochs=30,
                   batch_size=64, lr=5e-3, dropout=0.1, device="cpu")  # fmt: skip
    model.fit(split.train)
    model.history(split.train)
    seen = split.train.matrix()
    recall = evaluate.evaluate(model, seen, split.valid, k=1).recall
    popular = evaluate.evaluate(create("popular").fit(seen), seen, split.valid, k=1).recall
    assert "sasrec" in SEQUENTIAL and recall > 0.8 > popular * 4
    assert model.log[-1]["loss"] < model.log[0]["loss"]
