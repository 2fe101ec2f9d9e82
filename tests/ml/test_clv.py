"""BG/NBD, Gamma-Gamma and Pareto/NBD reproduce the published CDNOW estimates; covariates work."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_ai.ml.predict.clv import BetaGeoNBD, GammaGamma

SUMMARY = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "cdnow"
    / "cdnow_customers_summary_with_transactions.csv"
)


@pytest.fixture(scope="module")
def cdnow():
    if not SUMMARY.exists():
        pytest.skip("../shared/data/cdnow is not beside this checkout")
    return pd.read_csv(SUMMARY)


def test_bgnbd_matches_the_published_parameters(cdnow):
    model = BetaGeoNBD().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert [round(v, 3) for v in (model.r, model.alpha, model.a, model.b)] == [
        0.243,
        4.414,
        0.793,
        2.426,
    ]
    total = model.expected_purchases(39.0, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum()
    assert round(total) == 1653  # the paper's holdout forecast
    alive = model.probability_alive(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert np.all((alive > 0) & (alive <= 1)) and np.all(alive[cdnow["x"] == 0] == 1)


def test_gamma_gamma_matches_the_published_parameters(cdnow):
    spend = GammaGamma().fit(cdnow["x"], cdnow["zbar"])
    assert [round(v, 2) for v in (spend.p, spend.q, spend.v)] == [6.25, 3.74, 15.45]
    value = spend.expected_value(np.array([1, 10]), np.array([100.0, 100.0]))
    assert value[0] < value[1] < 100  # few purchases shrink harder towards the mean (~35)


def test_pareto_nbd_matches_the_published_parameters(cdnow):
    from marketing_ai.ml.predict.clv import ParetoNBD

    model = ParetoNBD().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert (round(model.r, 3), round(model.alpha, 2), round(model.s, 3), round(model.beta, 2)) == (
        0.553,
        10.58,
        0.606,
        11.67,
    )
    assert round(model.expected_purchases(39.0, cdnow["x"], cdnow["t_x"], cdnow["T"]).sum()) == 1666


def test_pareto_nbd_with_covariates_recovers_a_known_effect():
    """Simulated customers whose purchase rate grows with one covariate (γ = 0.5) and whose
    lifetimes do not depend on it: the fit finds both, and of two newcomers the one with the
    higher covariate is expected to buy more."""
    from marketing_ai.ml.predict.clv import ParetoNBDCovariates

    rng = np.random.default_rng(7)
    n, horizon = 4000, 30.0
    z = rng.normal(size=n)
    rate = rng.gamma(1.0, 1.0 / (5.0 * np.exp(-0.5 * z)))  # α_i = 5·exp(-0.5 z)
    life = rng.exponential(1.0 / rng.gamma(1.0, 1.0 / 20.0, size=n))
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        times = np.cumsum(rng.exponential(1.0 / rate[i], size=200))
        times = times[times < min(life[i], horizon)]
        x[i], t_x[i] = len(times), times[-1] if len(times) else 0.0
    T = np.full(n, horizon)
    model = ParetoNBDCovariates().fit(x, t_x, T, z[:, None])
    assert abs(model.purchase_effects[0] - 0.5) < 0.15
    assert abs(model.dropout_effects[0]) < 0.3
    newcomers = np.zeros(2), np.zeros(2), np.zeros(2)  # just arrived: only z tells them apart
    low, high = model.expected_purchases(10.0, *newcomers, np.array([[-1.0], [1.0]]))
    assert high > 2 * low  # e^(0.5 * 2) = 2.7 times the rate


@pytest.mark.parametrize(
    "params, x, t_x, T",
    [
        ((0.55, 10.6, 0.61, 11.7), 2, 30.0, 39.0),  # CDNOW's estimate, an ordinary customer
        ((0.73, 10.0, 5.0, 3000.0), 254, 100.0, 101.0),  # a heavy buyer, β far above α
        ((0.73, 3000.0, 5.0, 10.0), 40, 60.0, 90.0),  # α far above β
    ],
)
def test_pareto_nbd_dropout_term_equals_its_integral(params, x, t_x, T):
    """A0 = (r+s+x) ∫ (α+τ)^-(r+x) (β+τ)^-(s+1) dτ over [t_x, T]: the closed form stays finite
    and right where ₂F₁'s own series overflows."""
    from scipy import integrate

    from marketing_ai.ml.predict.clv import ParetoNBD

    r, alpha, s, beta = params
    n = r + s + x
    # scaled by the integrand's value at t_x, so that it does not underflow
    scale = -(r + x) * np.log(alpha + t_x) - (s + 1) * np.log(beta + t_x)

    def integrand(tau):
        return np.exp(-(r + x) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau) - scale)

    integral, _ = integrate.quad(integrand, t_x, T, epsabs=0, epsrel=1e-12, limit=200)
    expected = np.log(n) + scale + np.log(integral)
    got = ParetoNBD._log_a0(r, alpha, s, beta, np.array([x]), np.array([t_x]), np.array([T]))
    assert np.isfinite(got[0]) and got[0] == pytest.approx(expected, abs=1e-6)
