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
            np.zeros(n, np.int32),
            np.array(items, np.int32),
            np.zeros(n),
            1,
            5,
            np.arange(1),
            np.arange(5),
        )

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
    [
        ("ease", {"l2": 10.0}),
        ("dlae", {"l2": 5.0, "dropout": 0.3}),
        ("itemknn", {"k": 5}),
        ("als", {"factors": 4, "iterations": 10}),
    ],
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
    m = evaluate.evaluate(
        recommend.create("ease", l2=10.0).fit(split.train.matrix()),
        split.train.matrix(),
        split.test,
        k=5,
    )
    pop = evaluate.evaluate(
        recommend.create("popular").fit(split.train.matrix()), split.train.matrix(), split.test, k=5
    )
    assert m.recall > pop.recall and m.users == 40


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown recommender"):
        recommend.create("magic")
    assert recommend.names() == ["als", "dlae", "ease", "itemknn", "popular", "sasrec"]
    with pytest.raises(ValueError, match="dropout"):
        recommend.create("dlae", dropout=1.0)


def test_dlae_is_ease_trained_on_histories_with_items_dropped():
    """The closed form equals least squares over many copies of the histories, each item
    dropped with probability p (survivors scaled by 1/(1-p)) and predicted back."""
    X = two_tastes().matrix().toarray().astype(float)
    p, l2, copies = 0.4, 5.0, 3000
    rng = np.random.default_rng(1)
    kept = rng.random((copies, *X.shape)) >= p
    inputs = (X[None] * kept / (1 - p)).reshape(-1, X.shape[1])
    targets = np.tile(X, (copies, 1))
    gram = inputs.T @ inputs / copies + l2 * np.eye(X.shape[1])
    expected = np.linalg.solve(gram, inputs.T @ targets / copies)
    model = recommend.create("dlae", l2=l2, dropout=p).fit(two_tastes().matrix())
    np.testing.assert_allclose(model.B, expected, atol=0.02)


def test_dlae_holds_popular_items_back_more_than_ease():
    """With EASE's zero diagonal and no dropout DLAE is EASE; with dropout, the penalty on item
    j's row grows with j's count, so a popular item's weights shrink more than a rare one's."""
    X = two_tastes().matrix()
    ease = recommend.create("ease", l2=10.0).fit(X)
    same = recommend.create("dlae", l2=10.0, dropout=0.0, zero_diagonal=True).fit(X)
    np.testing.assert_allclose(same.B, ease.B)
    dropped = recommend.create("dlae", l2=10.0, dropout=0.5, zero_diagonal=True).fit(X)
    counts = np.asarray(X.sum(axis=0)).ravel()
    shrink = np.abs(dropped.B).sum(axis=1) / np.abs(ease.B).sum(axis=1)
    assert np.all(shrink < 1.0)
    assert np.corrcoef(counts, shrink)[0, 1] < -0.5


def test_recbole_file_keeps_ratings_from_min_rating(tmp_path):
    path = tmp_path / "tiny.inter"
    path.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\tA\t5\t1\nu1\tB\t2\t2\nu2\tA\t3\t3\nu2\tC\t1\t4\n"
    )
    assert len(datasets.load_recbole_inter(path)) == 4
    kept = datasets.load_recbole_inter(path, min_rating=3)
    assert len(kept) == 2 and list(kept.item_labels[kept.items]) == ["A", "A"]
