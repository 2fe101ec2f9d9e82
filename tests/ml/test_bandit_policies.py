"""marketing_ai.ml.bandit.policies: probabilities that sum to 1 and respect the floor; Thompson
sampling in waves concentrating on the best variant; linear Thompson sampling learning which
variant is best for which customers."""

import numpy as np
import pytest

from marketing_ai.ml.bandit.policies import BetaThompson, LinearThompson, floored, sample_rows


def test_probabilities_sum_to_one_and_respect_the_floor():
    ts = BetaThompson(floor=0.02)
    # Arm 2 is far ahead: without the floor the others would get (almost) nothing.
    p = ts.probabilities([10, 12, 300], [1000, 1000, 1000], draws=5000, seed=1)
    assert p.shape == (3,)
    assert p.sum() == pytest.approx(1.0)
    assert p.min() >= 0.02 - 1e-12
    assert p[2] == pytest.approx(1 - 2 * 0.02, abs=1e-9)
    # Nothing known yet: every arm as likely as any other.
    assert BetaThompson().probabilities([0] * 4, [0] * 4, seed=3) == pytest.approx(
        np.full(4, 0.25), abs=0.02
    )
    assert floored(np.array([1.0, 0.0]), 0.6) == pytest.approx([0.5, 0.5])


def test_rank_probabilities_fill_every_slot_once():
    ts = BetaThompson(prior_a=[5, 50, 20, 1], prior_b=[100, 100, 100, 100], floor=0.0)
    ranks = ts.rank_probabilities(np.zeros(4), np.zeros(4), positions=3, draws=4000, seed=0)
    assert ranks.shape == (4, 3)
    assert ranks.sum(axis=0) == pytest.approx(np.ones(3))
    assert ranks[1, 0] > 0.95  # the arm with the best prior leads, the next one comes second
    assert ranks[2, 1] > 0.8


def test_choose_logs_the_probability_it_drew_with():
    ts = BetaThompson()
    rng = np.random.default_rng(5)
    picks = [ts.choose([30, 40, 45], [100, 100, 100], rng) for _ in range(300)]
    p = ts.probabilities([30, 40, 45], [100, 100, 100], draws=50_000, seed=9)
    for arm, probability in picks:
        assert probability == pytest.approx(p[arm], abs=0.02)
    shares = np.bincount([arm for arm, _ in picks], minlength=3) / len(picks)
    assert shares == pytest.approx(p, abs=0.08)


def test_bad_counts_are_refused():
    ts = BetaThompson()
    with pytest.raises(ValueError, match="successes <= trials"):
        ts.probabilities([5, 1], [4, 10])
    with pytest.raises(ValueError, match="one length"):
        ts.probabilities([1, 2], [3])
    with pytest.raises(ValueError, match="prior_a has 3 arms"):
        BetaThompson(prior_a=[1, 1, 1]).probabilities([1, 2], [3, 4])
    with pytest.raises(ValueError, match="> 0"):
        BetaThompson(prior_b=0)
    with pytest.raises(ValueError, match="floor"):
        BetaThompson(floor=1.0)


def test_thompson_in_waves_concentrates_on_the_best_variant():
    rates = np.array([0.030, 0.040, 0.055])
    rng = np.random.default_rng(11)
    ts = BetaThompson()
    successes, trials = np.zeros(3), np.zeros(3)
    shares = []
    for wave in range(12):
        p = ts.probabilities(successes, trials, draws=5000, seed=wave)
        shares.append(p)
        sent = rng.multinomial(2000, p)
        successes += rng.binomial(sent, rates)
        trials += sent
    assert shares[0] == pytest.approx(np.full(3, 1 / 3), abs=0.02)
    assert shares[-1][2] > 0.85
    assert trials[2] / trials.sum() > 0.6  # most of the 24,000 sends went to the best variant


def _contextual_logs(n: int, seed: int):
    """Two customer kinds: arm 0 converts 20% of kind 0 and 5% of kind 1; arm 1 the reverse;
    arm 2 a flat 10%."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    X = np.column_stack([kind, rng.standard_normal(n)])  # the second feature is noise
    rates = np.column_stack([np.where(kind == 0, 0.20, 0.05), np.where(kind == 0, 0.05, 0.20)])
    rates = np.column_stack([rates, np.full(n, 0.10)])
    return rng, X, rates


def test_linear_thompson_learns_a_context_dependent_best_arm():
    rng, X, rates = _contextual_logs(6000, seed=2)
    arms = rng.integers(0, 3, len(X))
    rewards = (rng.random(len(X)) < rates[np.arange(len(X)), arms]).astype(float)
    lin = LinearThompson(l2=1.0, scale=1.0, floor=0.01).fit(X, arms, rewards, n_arms=3)
    probe = np.array([[0.0, 0.0], [1.0, 0.0]])
    p = lin.probabilities(probe, draws=400, seed=0)
    assert p.shape == (2, 3)
    assert p.sum(axis=1) == pytest.approx(np.ones(2))
    assert p.min() >= 0.01 - 1e-12
    assert p[0, 0] > 0.9 and p[1, 1] > 0.9
    expected = lin.expected(probe)
    assert expected[0, 0] == pytest.approx(0.20, abs=0.03)
    assert expected[1, 1] == pytest.approx(0.20, abs=0.03)


def test_linear_thompson_in_waves_earns_more_than_a_uniform_split():
    rng, X, rates = _contextual_logs(10_000, seed=4)
    waves = np.array_split(np.arange(len(X)), 5)
    arms = rng.integers(0, 3, len(waves[0]))  # the first wave knows nothing: uniform
    logged_arms, logged_rewards = [arms], [rng.random(len(arms)) < rates[waves[0], arms]]
    for wave in waves[1:]:
        done = np.concatenate(waves[: len(logged_arms)])
        lin = LinearThompson().fit(
            X[done], np.concatenate(logged_arms), np.concatenate(logged_rewards), n_arms=3
        )
        arms, probabilities = lin.choose(X[wave], rng)
        assert (probabilities >= 0.01 - 1e-12).all()
        logged_arms.append(arms)
        logged_rewards.append(rng.random(len(arms)) < rates[wave, arms])
    last = rates[waves[-1], logged_arms[-1]].mean()
    assert last > 0.18  # the oracle earns 0.20 a send, a uniform split 0.117


def test_linear_thompson_refuses_bad_input():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="fit the policy first"):
        LinearThompson().probabilities(X)
    with pytest.raises(ValueError, match="integers in 0..1"):
        LinearThompson().fit(X, [0, 1, 2, 0], [0, 1, 0, 1], n_arms=2)
    with pytest.raises(ValueError, match="one row per decision"):
        LinearThompson().fit(X, [0, 1], [0, 1], n_arms=2)
    lin = LinearThompson().fit(X, [0, 1, 1, 0], [0, 1, 0, 1], n_arms=2)
    with pytest.raises(ValueError, match="features"):
        lin.probabilities(np.zeros((3, 5)))
    # An arm nobody has been sent yet keeps its prior and can still be picked.
    cold = LinearThompson().fit(X, [0, 0, 0, 0], [0, 1, 0, 1], n_arms=3)
    assert cold.probabilities(X[:1], seed=1)[0, 2] > 0.05


def test_sample_rows_follows_the_probabilities():
    p = np.tile([0.1, 0.6, 0.3], (20_000, 1))
    arms, chosen = sample_rows(p, np.random.default_rng(0))
    assert np.bincount(arms, minlength=3) / len(arms) == pytest.approx(p[0], abs=0.01)
    assert chosen == pytest.approx(p[0][arms])


def test_no_logs_yet_and_a_single_variant():
    # A campaign's first refit may see no logs at all: the prior alone, every arm as likely.
    empty = LinearThompson().fit(np.zeros((0, 2)), [], [], n_arms=3)
    p = empty.probabilities(np.ones((5, 2)), draws=4000, seed=0)
    assert p == pytest.approx(np.full((5, 3), 1 / 3), abs=0.03)
    # One variant: it gets everything, floor or not.
    assert BetaThompson().probabilities([3], [10]) == pytest.approx([1.0])
    assert LinearThompson().fit(np.ones((2, 1)), [0, 0], [1, 0], n_arms=1).probabilities(
        np.ones((2, 1))
    ) == pytest.approx(np.ones((2, 1)))
