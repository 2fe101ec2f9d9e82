"""marketing_ai.ml.uplift.learners on a simulated randomised send whose true uplift is known:
the message adds 15 points to customers with x0 > 0.5 and takes 5 from the rest; x1 drives the
response either way (sure things) but not the uplift; x2 is noise."""

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from marketing_ai.ml.uplift import metrics
from marketing_ai.ml.uplift.learners import LEARNERS, fit_uplift

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
    return simulated(6_000, 0), simulated(6_000, 1)


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
    model = fit_uplift(X, t, y, feature_names=NAMES, seed=3, learners=("s", "x"), folds=2)
    assert set(model.validation) == {"s", "x", "mean"}
    assert model.learner == max(model.validation, key=model.validation.get)
    again = fit_uplift(X, t, y, feature_names=NAMES, seed=3, learners=("s", "x"), folds=2)
    assert again.learner == model.learner
    assert np.allclose(again.predict(X2[:100]), model.predict(X2[:100]))
    sent, not_sent = model.outcomes(X2)
    assert ((0 <= sent) & (sent <= 1) & (0 <= not_sent) & (not_sent <= 1)).all()
    # Sure things: x1 raises the response either way.
    assert np.corrcoef(not_sent, X2[:, 1])[0, 1] > 0.8


def test_reasons_name_what_drives_the_uplift_in_uplift_units(data, single):
    _, (X2, _, _, _) = data
    model = single("t")
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
