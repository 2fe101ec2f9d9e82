"""marketing_ai.ml.bandit.ope on a synthetic log whose true value is known exactly: a fixed
population of customers, a logging policy with known propensities, a candidate policy whose value
over the population is computed, not estimated. IPW, SNIPW and DR land on it within their
intervals over repeated logs, DR with less spread than IPW; bad input is refused by name."""

import numpy as np
import pytest

from marketing_ai.ml.bandit import ope

K = 3


def _softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _world(seed: int = 0, size: int = 4000):
    """Customers with two features; arm a converts with sigmoid(b_a + w_a . x). The logging policy
    prefers arm 0, the candidate the arm that is truly best (softly)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((size, 2))
    b = np.array([-0.5, 0.0, -0.8])
    w = np.array([[0.6, -0.4], [-1.6, 1.0], [2.0, 1.6]])
    mu = 1 / (1 + np.exp(-(b + X @ w.T)))  # (size, K)
    logging = _softmax(np.column_stack([np.full(size, 1.0), np.zeros(size), np.zeros(size)]))
    candidate = _softmax(4 * mu / mu.max())
    truth = float((candidate * mu).sum(axis=1).mean())  # exact: the population is finite
    return X, mu, logging, candidate, truth


def _log(world, n: int, rng):
    X, mu, logging, candidate, _ = world
    who = rng.integers(0, len(X), n)
    u = rng.random(n)[:, None]
    arms = np.minimum((np.cumsum(logging[who], axis=1) < u).sum(axis=1), K - 1)
    rows = np.arange(n)
    rewards = (rng.random(n) < mu[who, arms]).astype(float)
    return X[who], arms, rewards, logging[who][rows, arms], candidate[who]


def test_the_estimators_recover_a_known_value_within_their_intervals():
    world = _world()
    truth = world[-1]
    rng = np.random.default_rng(1)
    found = {"ipw": [], "snipw": [], "dr": [], "dm": []}
    covered = dict.fromkeys(found, 0)
    repeats = 40
    for repeat in range(repeats):
        X, arms, rewards, pscores, target = _log(world, 3000, rng)
        logged = target[np.arange(len(arms)), arms]
        q = ope.reward_model(X, arms, rewards, K, folds=2, seed=repeat)
        estimates = {
            "ipw": ope.ipw(rewards, pscores, logged),
            "snipw": ope.snipw(rewards, pscores, logged),
            "dr": ope.dr(rewards, arms, pscores, target, q),
            "dm": ope.dm(q, target),
        }
        for name, estimate in estimates.items():
            assert estimate.low < estimate.value < estimate.high
            found[name].append(estimate.value)
            covered[name] += estimate.low <= truth <= estimate.high
    for name in ("ipw", "snipw", "dr"):
        values = np.array(found[name])
        # Unbiased: the mean over 40 logs within 3 standard errors of the truth ...
        assert abs(values.mean() - truth) < 3 * values.std(ddof=1) / np.sqrt(repeats), name
        # ... and the 95% intervals cover it about as often as they claim (IPW's normal
        # interval a little less: its heavy-tailed weights; here 35 of 40).
        assert covered[name] >= 0.8 * repeats, (name, covered[name])
    assert np.std(found["dr"]) < 0.8 * np.std(found["ipw"])
    # The reward model is the true one's family (logistic, each arm its own slopes): DM is close.
    assert abs(np.mean(found["dm"]) - truth) < 0.01


def test_by_hand():
    rewards, pscores, target = [1.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.25, 0.25], [1.0, 0.0, 0.5, 0.5]
    # weights 2, 0, 2, 2: IPW (2 + 0 + 2 + 0) / 4, SNIPW 4 / 6.
    assert ope.ipw(rewards, pscores, target).value == pytest.approx(1.0)
    assert ope.snipw(rewards, pscores, target).value == pytest.approx(4 / 6)
    # The candidate that is the logging policy: IPW is the logged mean, exactly.
    assert ope.ipw(rewards, pscores, pscores).value == pytest.approx(0.5)
    q = np.array([[0.5, 0.5]] * 4)
    both = np.array([[0.5, 0.5]] * 4)
    assert ope.dm(q, both).value == pytest.approx(0.5)
    arms = [0, 1, 0, 1]
    # DR with the model's value everywhere: DM plus the weighted residuals (+0.5, 0, +0.5, -0.5).
    dr = ope.dr(rewards, arms, [0.5] * 4, both, q)
    assert dr.value == pytest.approx(0.5 + (0.5 - 0.5 + 0.5 - 0.5) / 4)


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match="pscores must be in \\(0, 1\\]"):
        ope.ipw([1, 0], [0.5, 0.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="pscores must be in"):
        ope.snipw([1, 0], [0.5, -0.1], [0.5, 0.5])
    with pytest.raises(ValueError, match="pscores has 1 rows, rewards 2"):
        ope.ipw([1, 0], [0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="target_probs_of_logged must be probabilities"):
        ope.ipw([1, 0], [0.5, 0.5], [1.5, 0.5])
    with pytest.raises(ValueError, match="non-empty"):
        ope.ipw([], [], [])
    with pytest.raises(ValueError, match="each row of target_probs must sum to 1"):
        ope.dm(np.zeros((2, 2)), [[0.5, 0.4], [0.5, 0.5]])
    with pytest.raises(ValueError, match="each row of target_probs must sum to 1"):
        ope.dr([1, 0], [0, 1], [0.5, 0.5], [[0.7, 0.7], [0.5, 0.5]], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="arms must be integers in 0..1"):
        ope.dr([1, 0], [0, 2], [0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reward_hat must be"):
        ope.dr([1, 0], [0, 1], [0.5, 0.5], [[0.5, 0.5], [0.5, 0.5]], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="rewards must be finite"):
        ope.ipw([np.nan, 0], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="folds"):
        ope.reward_model(np.zeros((3, 1)), [0, 1, 0], [0, 1, 0], 2, folds=1)
    with pytest.raises(ValueError, match="unknown reward model"):
        ope.reward_model(np.eye(4), [0, 1, 0, 1], [0, 1, 1, 0], 2, model="forest")


def test_the_reward_model_is_cross_fitted_and_learns_each_arm():
    world = _world(seed=3)
    X, arms, rewards, _, _ = _log(world, 6000, np.random.default_rng(2))
    for model in ("logistic", "lightgbm"):
        q = ope.reward_model(X, arms, rewards, K, folds=3, seed=0, model=model)
        assert q.shape == (len(X), K)
        assert ((q >= 0) & (q <= 1)).all()
    # Cross-fitted: a row's prediction does not move when only its own outcome flips.
    flipped = rewards.copy()
    flipped[0] = 1 - flipped[0]
    a = ope.reward_model(X, arms, rewards, K, folds=2, seed=7)
    b = ope.reward_model(X, arms, flipped, K, folds=2, seed=7)
    assert a[0] == pytest.approx(b[0])
    # Revenue-like rewards are regressed, not classified.
    spend = rewards * 25.0
    assert ope.reward_model(X, arms, spend, K, seed=0).max() > 1.5
