"""BG/NBD, Gamma-Gamma and Pareto/NBD reproduce the published CDNOW estimates; covariates work."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_ai.ml.predict.clv import BetaGeoNBD, GammaGamma

SUMMARY = (Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow"
           / "cdnow_customers_summary_with_transactions.csv")  # fmt: skip


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
