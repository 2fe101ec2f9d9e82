"""marketing_ai.ml.uplift.learners on a simulated randomised send whose true uplift is known:
the message adds 15 points to customers with x0 > 0.5 and takes 5 from the rest; x1 drives the
response either way (sure things) but not the uplift; x2 is noise. 3,000 rows a set: enough for
every learner to find the step, small enough to keep the file a few seconds."""

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from marketing_ai.ml.uplift import metrics
from marketing_ai.ml.uplift.learners import LEARNERS, fit_uplift
from marketing_ai.ml.uplift.linear import Encoder

NAMES = ["x0", "x1", "x2"]


def simulated(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    treated = rng.integers(0, 2, n)
    effect = np.where(X[:, 0] > 0.5, 0.15, -0.05)
    base = 0.05 + 0.3 * X[:, 1]
    y = (rng.random(n) < np.clip(base + treated * effect, 0, 1)).astype(int)
    return X, treated, y, effect


@pytest.fixture(scope="module")
def data():
    return simulated(3_000, 0), simulated(3_000, 1)


@pytest.fixture(scope="module")
def single(data):
    """One model per learner, fitted once for the tests that read it."""
    (X, t, y, _), _ = data
    cache = {}

    def get(learner):
        if learner not in cache:
            cache[learner] = fit_uplift(X, t, y, feature_names=NAMES, learners=(learner,), folds=2)
        return cache[learner]

    return get


@pytest.mark.parametrize("learner", LEARNERS)
def test_each_learner_ranks_the_persuadables_first_on_fresh_customers(data, single, learner):
    _, (X2, t2, y2, effect2) = data
    model = single(learner)
    assert model.learner == learner
    score = model.predict(X2)
    assert metrics.qini_coefficient(y2, t2, score) > 0.15
    assert np.corrcoef(score, effect2)[0, 1] > 0.5
    # The mean predicted uplift is near the true mean (5 points), whatever the learner.
    assert abs(score.mean() - effect2.mean()) < 0.03


def test_fit_uplift_chooses_by_cross_validation_and_the_choice_is_reproducible(data):
    (X, t, y, _), (X2, t2, y2, effect2) = data
    learners = ("s", "logistic_t")
    model = fit_uplift(X, t, y, feature_names=NAMES, seed=3, learners=learners, folds=2)
    plain = {k: q for k, q in model.validation.items() if not k.endswith("trees")}
    assert set(plain) == {"s", "logistic_t", "mean"}
    assert model.learner == max(plain, key=plain.get)
    again = fit_uplift(X, t, y, feature_names=NAMES, seed=3, learners=learners, folds=2)
    assert again.learner == model.learner
    assert np.allclose(again.predict(X2[:100]), model.predict(X2[:100]))
    sent, not_sent = model.outcomes(X2)
    assert ((0 <= sent) & (sent <= 1) & (0 <= not_sent) & (not_sent <= 1)).all()
    # Sure things: x1 raises the response either way.
    assert np.corrcoef(not_sent, X2[:, 1])[0, 1] > 0.8


def test_reasons_name_what_drives_the_uplift_in_uplift_units(data, single):
    _, (X2, _, _, _) = data
    model = single("t")
    # the longer booster was tried on the same folds and kept only where it validated better
    longer = model.validation["t, 400 trees"]
    assert model.trees == (400 if longer > model.validation["t"] else 200)
    assert len(model.fitted[0].parts["sent"].booster_.dump_model()["tree_info"]) == model.trees
    assert model.explainer_r2 > 0.8
    reasons = model.reasons(X2[:200], top=2)
    assert len(reasons) == 200
    firsts = [r[0]["feature"] for r in reasons if r]
    assert firsts.count("x0") / len(firsts) > 0.8
    high = int(np.argmax(X2[:200, 0]))
    top = reasons[high][0]
    assert (
        top["feature"] == "x0" and top["contribution"] > 0 and top["value"] == round(X2[high, 0], 4)
    )
    assert abs(top["contribution"]) < 0.3  # response-rate points, not log-odds


def test_any_scikit_learn_style_base_and_pickling(data):
    (X, t, y, _), (X2, t2, y2, _) = data
    model = fit_uplift(
        X, t, y, learners=("t", "x"), seed=0,
        classifier=lambda: LogisticRegression(max_iter=500),
        regressor=LinearRegression,
    )  # fmt: skip
    assert model.feature_names == ["f0", "f1", "f2"]
    assert model.trees is None and not any(k.endswith("trees") for k in model.validation)
    score = model.predict(X2)
    # A linear model sees that uplift rises with x0 even if the step is not linear.
    assert metrics.qini_coefficient(y2, t2, score) > 0.1
    restored = pickle.loads(pickle.dumps(model))  # noqa: S301 (our own object)
    assert np.allclose(restored.predict(X2[:50]), score[:50])


@pytest.mark.parametrize(
    ("X", "t", "y", "message"),
    [
        (np.zeros((5, 2)), [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], "too few rows"),
        (np.zeros((5, 2)), [0, 1, 2, 1, 0], [0, 0, 1, 1, 0], "0 or 1"),
        (np.zeros(5), [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], "rows, features"),
    ],
)
def test_bad_input_is_a_clear_error(X, t, y, message):
    with pytest.raises(ValueError, match=message):
        fit_uplift(X, t, y)


def test_unknown_learner_and_wrong_names(data):
    (X, t, y, _), _ = data
    with pytest.raises(ValueError, match="learners"):
        fit_uplift(X, t, y, learners=("causal_forest",))
    with pytest.raises(ValueError, match="one feature name per column"):
        fit_uplift(X, t, y, feature_names=["a"])


def test_the_logistic_t_learner_reads_uplift_that_sits_in_one_code_of_a_categorical():
    """Code 3 of a 1-4 column gains 10 points, the others nothing (Starbucks' V5 is such a code):
    one-hot, the linear model ranks code 3 first, and a code unseen in training still scores."""
    rng = np.random.default_rng(2)
    n = 4_000
    X = np.column_stack([rng.integers(1, 5, n), rng.random(n)]).astype(float)
    treated = rng.integers(0, 2, n)
    p = 0.05 + 0.1 * X[:, 1] + treated * np.where(X[:, 0] == 3, 0.10, 0.0)
    y = (rng.random(n) < p).astype(int)
    model = fit_uplift(X, treated, y, learners=("logistic_t",), folds=2)
    score = model.predict(X)
    assert score[X[:, 0] == 3].min() > score[X[:, 0] != 3].max()
    assert abs(score[X[:, 0] == 3].mean() - 0.10) < 0.04
    assert np.isfinite(model.predict(np.array([[7.0, 0.5]]))).all()


def test_the_encoder_one_hots_small_codes_and_standardises_the_rest():
    codes = np.array([1, 2, 3, 2] * 5, dtype=float)
    flag = np.array([0, 1] * 10, dtype=float)
    amount = np.arange(20, dtype=float)  # 20 distinct values: a number, not a code
    amount[5] = np.nan
    X = np.column_stack([codes, flag, amount])
    encoder = Encoder().fit(X)
    E = encoder.transform(X)
    assert E.shape == (20, 5)  # three codes one-hot, the flag and the amount standardised
    assert E[:4, :3].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]
    assert np.allclose(E[:, 3], [-1, 1] * 10)
    present = np.delete(amount, 5)
    assert E[5, 4] == 0.0  # a missing value sits at the mean
    assert np.isclose(E[0, 4], (0 - present.mean()) / present.std())
    unseen = encoder.transform(np.array([[9, 1.0, present.mean()]]))
    assert unseen.tolist() == [[0, 0, 0, 1, 0]]
