"""Off-policy evaluation: what a candidate policy would have earned, judged on logs written by
another (the logging policy), before the candidate is switched on.

Every estimate is the mean of one term per logged decision i (reward r_i, arm a_i, the logging
policy's probability p_i of that arm, the candidate's probabilities π(·|x_i)):

- IPW (inverse propensity weighting): w_i r_i, w_i = π(a_i|x_i) / p_i. Unbiased; high variance
  when the candidate favours arms the logging policy rarely chose.
- SNIPW (self-normalised IPW): Σ w_i r_i / Σ w_i. A small bias, less variance, and always within
  the rewards' range.
- DM (direct method): Σ_a π(a|x_i) q(x_i, a), with q a reward model. Low variance; biased by
  whatever the model gets wrong.
- DR (doubly robust): DM's term + w_i (r_i - q(x_i, a_i)). Unbiased when the propensities are
  right, whatever the model; less variance than IPW when the model is any good.

Intervals: 95%, the normal approximation of the mean of the per-row terms (for SNIPW, of its
linearisation w_i (r_i - V) / mean(w)), i.e. value ± 1.96 · sd(terms) / √n. DM's interval leaves
out the reward model's own error, so it is narrower than DM deserves.

`reward_model` gives the q that DM and DR need, cross-fitted: each row's predictions come from a
model that did not see that row, so DR's correction is not cancelled by the model's overfit.
"""

from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A policy's estimated value (mean reward per decision) with a 95% interval."""

    value: float
    low: float
    high: float


def _interval(terms: np.ndarray, value: float | None = None) -> Estimate:
    value = float(terms.mean()) if value is None else value
    se = float(terms.std(ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("inf")
    return Estimate(value, value - Z95 * se, value + Z95 * se)


def _vector(name: str, values, n: int | None = None) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or not len(values):
        raise ValueError(f"{name} must be a non-empty 1-d array")
    if n is not None and len(values) != n:
        raise ValueError(f"{name} has {len(values)} rows, rewards {n}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite")
    return values


def _pscores(pscores, n: int) -> np.ndarray:
    pscores = _vector("pscores", pscores, n)
    if (pscores <= 0).any() or (pscores > 1).any():
        raise ValueError(
            "pscores must be in (0, 1]: the logging policy's probability of the arm it chose "
            "(0 would mean it could not have chosen it)"
        )
    return pscores


def _probabilities(name: str, values, n: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or len(values) != n or values.shape[1] < 1:
        raise ValueError(f"{name} must be (n, K) with one row per logged decision (n = {n})")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ValueError(f"{name} must be probabilities in [0, 1]")
    if not np.allclose(values.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError(f"each row of {name} must sum to 1")
    return values


def _arms(arms, n: int, k: int) -> np.ndarray:
    arms = np.asarray(arms)
    if arms.shape != (n,):
        raise ValueError(f"arms must be 1-d with one row per logged decision (n = {n})")
    if not np.issubdtype(arms.dtype, np.integer) or arms.min() < 0 or arms.max() >= k:
        raise ValueError(f"arms must be integers in 0..{k - 1}")
    return arms


def _weights(rewards, pscores, target_probs_of_logged) -> tuple[np.ndarray, np.ndarray]:
    rewards = _vector("rewards", rewards)
    pscores = _pscores(pscores, len(rewards))
    target = _vector("target_probs_of_logged", target_probs_of_logged, len(rewards))
    if (target < 0).any() or (target > 1).any():
        raise ValueError("target_probs_of_logged must be probabilities in [0, 1]")
    return rewards, target / pscores


def ipw(rewards, pscores, target_probs_of_logged) -> Estimate:
    """rewards (n,), pscores (n,) the logging policy's probability of each logged arm,
    target_probs_of_logged (n,) the candidate's probability of that same arm."""
    rewards, w = _weights(rewards, pscores, target_probs_of_logged)
    return _interval(w * rewards)


def snipw(rewards, pscores, target_probs_of_logged) -> Estimate:
    """As ipw, divided by the mean weight instead of its expectation (1)."""
    rewards, w = _weights(rewards, pscores, target_probs_of_logged)
    if w.sum() <= 0:
        raise ValueError("the candidate gives probability 0 to every logged arm")
    value = float((w * rewards).sum() / w.sum())
    return _interval(w * (rewards - value) / w.mean() + value, value)


def dm(reward_hat, target_probs) -> Estimate:
    """reward_hat (n, K) the modelled reward of every arm for each logged context,
    target_probs (n, K) the candidate's probabilities."""
    reward_hat = np.asarray(reward_hat, dtype=float)
    if reward_hat.ndim != 2 or not len(reward_hat) or not np.isfinite(reward_hat).all():
        raise ValueError("reward_hat must be a finite (n, K) array")
    target_probs = _probabilities("target_probs", target_probs, len(reward_hat))
    if target_probs.shape != reward_hat.shape:
        raise ValueError("target_probs and reward_hat must have the same shape")
    return _interval((target_probs * reward_hat).sum(axis=1))


def dr(rewards, arms, pscores, target_probs, reward_hat) -> Estimate:
    """rewards, arms, pscores (n,) as logged; target_probs and reward_hat (n, K)."""
    rewards = _vector("rewards", rewards)
    n = len(rewards)
    pscores = _pscores(pscores, n)
    target_probs = _probabilities("target_probs", target_probs, n)
    reward_hat = np.asarray(reward_hat, dtype=float)
    if reward_hat.shape != target_probs.shape or not np.isfinite(reward_hat).all():
        raise ValueError("reward_hat must be a finite array of target_probs' shape (n, K)")
    arms = _arms(arms, n, target_probs.shape[1])
    rows = np.arange(n)
    w = target_probs[rows, arms] / pscores
    terms = (target_probs * reward_hat).sum(axis=1) + w * (rewards - reward_hat[rows, arms])
    return _interval(terms)


def _features(X, arms, k: int, interactions: bool) -> np.ndarray:
    onehot = np.eye(k)[arms]
    parts = [X, onehot]
    if interactions:  # each arm its own slope on every feature: a per-arm model, fitted jointly
        parts.append((X[:, None, :] * onehot[:, :, None]).reshape(len(X), -1))
    return np.hstack(parts)


def _fit_predict(model: str, binary: bool, train, y, test, interactions: bool, seed: int):
    """Fits on (train, y) and predicts on test, each a (X, arms, K) triple; (m, K)."""
    X, arms, k = train
    if binary and len(np.unique(y)) < 2:  # a fold with one outcome only: nothing to learn
        return np.full((len(test[0]), k), float(y[0]))
    Xt = test[0]
    if model == "logistic":
        # numpy/LightGBM with it: loaded on use, not in the web process
        from sklearn.linear_model import LogisticRegression, Ridge

        # numpy/LightGBM with it: loaded on use, not in the web process
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X)
        X, Xt = scaler.transform(X), scaler.transform(Xt)
        fitted = (LogisticRegression(C=1.0, max_iter=1000) if binary else Ridge(alpha=1.0)).fit(
            _features(X, arms, k, interactions), y
        )
    elif model == "lightgbm":
        import lightgbm  # numpy/LightGBM with it: loaded on use, not in the web process

        params = dict(
            n_estimators=200,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=20,
            subsample=0.8,
            subsample_freq=1,
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
        cls = lightgbm.LGBMClassifier if binary else lightgbm.LGBMRegressor
        fitted = cls(**params).fit(np.column_stack([X, arms]), y, categorical_feature=[X.shape[1]])
    else:
        raise ValueError(f"unknown reward model {model!r}: 'logistic' or 'lightgbm'")
    out = np.empty((len(Xt), k))
    for arm in range(k):
        column = np.full(len(Xt), arm)
        if model == "logistic":
            rows = _features(Xt, column, k, interactions)
        else:
            rows = np.column_stack([Xt, column])
        out[:, arm] = fitted.predict_proba(rows)[:, 1] if binary else fitted.predict(rows)
    return out


def reward_model(
    X,
    arms,
    rewards,
    n_arms: int,
    folds: int = 2,
    seed: int = 0,
    model: str = "logistic",
    interactions: bool = True,
) -> np.ndarray:
    """(n, K) each logged context's modelled reward for every arm, cross-fitted over `folds`
    random folds (a row's predictions come from the model fitted on the other folds).

    model: "logistic" (L2 logistic regression on standardised features plus the arm; with
    `interactions` each arm also gets its own slope on every feature, i.e. a logistic regression
    per arm fitted jointly; leave it off when K x d is large) or "lightgbm" (gradient boosting
    with the arm as a categorical feature). Rewards other than 0/1 are regressed (ridge or
    LightGBM regression) instead.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or not len(X) or not np.isfinite(X).all():
        raise ValueError("X must be a finite, non-empty 2-d array")
    rewards = _vector("rewards", rewards, len(X))
    if n_arms < 1:
        raise ValueError("n_arms must be >= 1")
    arms = _arms(arms, len(X), n_arms)
    if not 2 <= folds <= len(X):
        raise ValueError("folds must be at least 2 and at most the number of rows")
    binary = bool(np.isin(rewards, (0.0, 1.0)).all())
    order = np.random.default_rng(seed).permutation(len(X))
    out = np.empty((len(X), n_arms))
    for fold in np.array_split(order, folds):
        held = np.zeros(len(X), dtype=bool)
        held[fold] = True
        out[held] = _fit_predict(
            model,
            binary,
            (X[~held], arms[~held], n_arms),
            rewards[~held],
            (X[held], arms[held], n_arms),
            interactions,
            seed,
        )
    return out
