"""Thompson sampling over a campaign's variants (arms), as probabilities to send by.

Both policies answer with a probability for every arm rather than a single pick: a campaign sends
its next wave in those shares, a journey step samples one arm per customer from them, and the
probability of the arm sent is logged beside the message. A floor (1% by default) keeps every arm
possible, so the logs support off-policy evaluation (ope.py) of any other policy later:

    p_floored = floor + (1 - K * floor) * p        (each p_floored >= floor, the sum still 1)

- BetaThompson: Beta-Bernoulli, no context. P(arm is best) under the posterior, by Monte Carlo.
- LinearThompson: Bayesian ridge regression of the reward on customer features, one per arm;
  P(arm has the highest sampled reward | x) per customer, by Monte Carlo over posterior draws.

LinUCB is left out on purpose: it is deterministic (propensities 0 or 1), so its logs would
support no off-policy evaluation unless it were mixed with exploration (epsilon-greedy).
"""

import numpy as np

CHUNK = 2048  # rows (or draws) handled at once, to bound memory at draws x CHUNK x arms


def floored(p: np.ndarray, floor: float, axis: int = -1) -> np.ndarray:
    """Mixes probabilities with the uniform so that each is at least `floor` (sums kept at 1);
    a floor of 1/K or more gives the uniform."""
    k = p.shape[axis]
    if floor * k >= 1:
        return np.full_like(p, 1.0 / k, dtype=float)
    return floor + (1.0 - k * floor) * p


def _check_floor(floor: float) -> float:
    floor = float(floor)
    if not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1), got {floor}")
    return floor


class BetaThompson:
    """Beta-Bernoulli Thompson sampling over K arms.

    prior_a, prior_b: the Beta prior's pseudo-successes and pseudo-failures, a number for every
    arm or an array of K (an informative prior, e.g. a previous campaign's results).
    floor: the least probability any arm gets (0 only to reproduce an unfloored policy).
    """

    def __init__(self, prior_a=1.0, prior_b=1.0, floor: float = 0.01):
        self.prior_a = np.asarray(prior_a, dtype=float)
        self.prior_b = np.asarray(prior_b, dtype=float)
        if (self.prior_a <= 0).any() or (self.prior_b <= 0).any():
            raise ValueError("prior_a and prior_b must be > 0")
        self.floor = _check_floor(floor)

    def _posterior(self, successes, trials) -> tuple[np.ndarray, np.ndarray]:
        s = np.asarray(successes, dtype=float)
        t = np.asarray(trials, dtype=float)
        if s.ndim != 1 or s.shape != t.shape or not len(s):
            raise ValueError("successes and trials must be 1-d arrays of one length (K >= 1)")
        if not (np.isfinite(s).all() and np.isfinite(t).all()):
            raise ValueError("successes and trials must be finite")
        if (s < 0).any() or (s > t).any():
            raise ValueError("need 0 <= successes <= trials for every arm")
        for name, prior in (("prior_a", self.prior_a), ("prior_b", self.prior_b)):
            if prior.ndim and prior.shape != s.shape:
                raise ValueError(f"{name} has {prior.shape[0]} arms, the counts {len(s)}")
        return self.prior_a + s, self.prior_b + (t - s)

    def rank_probabilities(
        self, successes, trials, positions: int = 1, draws: int = 20_000, seed=0
    ) -> np.ndarray:
        """(K, positions): P(arm's sampled rate is the j-th highest), j = 0 .. positions-1, by
        Monte Carlo over `draws` posterior samples; each column floored and summing to 1. Column
        0 is P(arm is best). For a slate of `positions` slots filled in order of the draws."""
        a, b = self._posterior(successes, trials)
        k = len(a)
        if not 1 <= positions <= k:
            raise ValueError(f"positions must be in 1..{k}")
        if draws < 1:
            raise ValueError("draws must be >= 1")
        rng = np.random.default_rng(seed)
        counts = np.zeros((k, positions))
        for start in range(0, draws, CHUNK):
            n = min(CHUNK, draws - start)
            sampled = rng.beta(a, b, size=(n, k))
            if positions == 1:
                order = sampled.argmax(axis=1)[:, None]
            else:
                order = np.argsort(-sampled, axis=1)[:, :positions]
            for j in range(positions):
                counts[:, j] += np.bincount(order[:, j], minlength=k)
        return floored(counts / draws, self.floor, axis=0)

    def probabilities(self, successes, trials, draws: int = 20_000, seed=0) -> np.ndarray:
        """(K,) P(arm is best) under the posterior, floored: the next wave's shares.
        successes, trials: each arm's conversions and sends so far."""
        return self.rank_probabilities(successes, trials, 1, draws, seed)[:, 0]

    def choose(self, successes, trials, rng, draws: int = 20_000) -> tuple[int, float]:
        """One arm drawn from `probabilities`, and the probability it had (to log)."""
        rng = np.random.default_rng(rng)
        p = self.probabilities(successes, trials, draws=draws, seed=rng)
        arm = int(rng.choice(len(p), p=p))
        return arm, float(p[arm])


class LinearThompson:
    """Linear Thompson sampling: per arm, a Bayesian ridge regression of the reward on the
    customer's features (an intercept added), posterior N(mean, scale² σ² A⁻¹) with
    A = l2·I + XᵀX over the arm's logged rows; σ² is the residual variance pooled over arms,
    shrunk towards 0.25 (a coin's) while the logs are few.

    l2: the ridge penalty (prior precision), in units of rows: l2 = 1 weighs the prior like one
        customer. Features should be on comparable scales (0/1 indicators, standardised numbers).
    scale: widens (> 1) or narrows (< 1) the posterior, i.e. how much the policy explores.
    floor: the least probability any arm gets for any customer.
    """

    def __init__(self, l2: float = 1.0, scale: float = 1.0, floor: float = 0.01):
        if l2 <= 0 or scale <= 0:
            raise ValueError("l2 and scale must be > 0")
        self.l2 = float(l2)
        self.scale = float(scale)
        self.floor = _check_floor(floor)
        self.means: np.ndarray | None = None  # (K, d + 1) posterior means, intercept first
        self.factors: np.ndarray | None = None  # (K, d + 1, d + 1) Cholesky factors of the covs

    @staticmethod
    def _design(X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError("X must be 2-d: one row per customer, one column per feature")
        if not np.isfinite(X).all():
            raise ValueError("X must be finite")
        return np.hstack([np.ones((len(X), 1)), X])

    def fit(self, X, arms, rewards, n_arms: int) -> "LinearThompson":
        """Refits from all the logs so far: X (n, d) features at decision time, arms (n,) ints in
        0..n_arms-1, rewards (n,) (e.g. converted 0/1). Arms with no rows keep the prior."""
        Z = self._design(X)
        arms = np.asarray(arms)
        rewards = np.asarray(rewards, dtype=float)
        if n_arms < 1:
            raise ValueError("n_arms must be >= 1")
        if arms.shape != (len(Z),) or rewards.shape != (len(Z),):
            raise ValueError("X, arms and rewards must have one row per decision")
        if len(arms) and (
            not np.issubdtype(arms.dtype, np.integer) or arms.min() < 0 or arms.max() >= n_arms
        ):
            raise ValueError(f"arms must be integers in 0..{n_arms - 1}")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        p = Z.shape[1]
        means = np.zeros((n_arms, p))
        precisions = np.empty((n_arms, p, p))
        squared = 0.0
        for arm in range(n_arms):
            rows = arms == arm
            Za, ra = Z[rows], rewards[rows]
            precisions[arm] = self.l2 * np.eye(p) + Za.T @ Za
            means[arm] = np.linalg.solve(precisions[arm], Za.T @ ra)
            squared += float(((ra - Za @ means[arm]) ** 2).sum())
        # Two pseudo-rows of a coin's variance: a stable σ² before the first conversions.
        variance = (squared + 2 * 0.25) / (len(Z) + 2)
        covariances = np.linalg.inv(precisions) * (self.scale**2 * variance)
        self.means = means
        self.factors = np.linalg.cholesky((covariances + covariances.transpose(0, 2, 1)) / 2)
        return self

    def expected(self, X) -> np.ndarray:
        """(n, K) the posterior mean reward of each arm for each customer."""
        self._fitted()
        return self._design(X) @ self.means.T

    def _fitted(self) -> None:
        if self.means is None:
            raise ValueError("fit the policy first")

    def probabilities(self, X, draws: int = 200, seed=0) -> np.ndarray:
        """(n, K) P(the policy picks arm | x) for each customer: the share of `draws` posterior
        samples under which the arm's predicted reward is the highest, floored; rows sum to 1."""
        self._fitted()
        Z = self._design(X)
        if Z.shape[1] != self.means.shape[1]:
            raise ValueError(
                f"X has {Z.shape[1] - 1} features, the policy {self.means.shape[1] - 1}"
            )
        if draws < 1:
            raise ValueError("draws must be >= 1")
        rng = np.random.default_rng(seed)
        k, p = self.means.shape
        noise = rng.standard_normal((draws, k, p))
        thetas = self.means + np.einsum("kij,skj->ski", self.factors, noise)  # (draws, K, p)
        counts = np.zeros((len(Z), k))
        for start in range(0, len(Z), CHUNK):
            block = Z[start : start + CHUNK]
            scores = np.einsum("np,skp->snk", block, thetas)  # (draws, rows, K)
            best = scores.argmax(axis=2)
            for arm in range(k):
                counts[start : start + CHUNK, arm] = (best == arm).sum(axis=0)
        return floored(counts / draws, self.floor)

    def choose(self, X, rng, draws: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """One arm per customer drawn from `probabilities`: (arms (n,), the probabilities (n,))."""
        rng = np.random.default_rng(rng)
        p = self.probabilities(X, draws=draws, seed=rng)
        return sample_rows(p, rng)


def sample_rows(p: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """One arm per row of the (n, K) probabilities: (arms, the probability each had)."""
    rng = np.random.default_rng(rng)
    u = rng.random(len(p))[:, None]
    arms = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
    return arms, p[np.arange(len(p)), arms]
