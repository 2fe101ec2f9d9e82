import numpy as np
import pandas as pd
import pytest

from marketing_ai.ml.forecast.panel import Split
from marketing_ai.ml.forecast.reconcile import fit_to_total, mint, reconcile, shrunk_covariance


def _case(seed=0, m=5, h=4, obs=30):
    rng = np.random.default_rng(seed)
    children = rng.uniform(50, 100, (m, h))
    total = children.sum(axis=0) * rng.uniform(0.8, 1.2, h)
    child_errors = rng.normal(0, 1, (obs, m)) * rng.uniform(1, 6, m)
    total_errors = child_errors.sum(axis=1) + rng.normal(0, 3, obs)
    residuals = np.column_stack([total_errors, child_errors])
    return total, children, residuals


def test_mint_adds_up_and_matches_hierarchicalforecast():
    from hierarchicalforecast.methods import MinTrace

    total, children, residuals = _case()
    w = shrunk_covariance(residuals)
    ours_total, ours_children = mint(total, children, w)
    np.testing.assert_allclose(ours_children.sum(axis=0), ours_total, atol=1e-6)

    m, h = children.shape
    s = np.vstack([np.ones((1, m)), np.eye(m)])
    y_hat = np.vstack([total[None, :], children])
    # hierarchicalforecast takes residuals as in-sample actuals minus fitted values
    y_insample = np.zeros((m + 1, residuals.shape[0]))
    y_hat_insample = -residuals.T
    theirs = MinTrace(method="mint_shrink").fit_predict(
        S=s, y_hat=y_hat, y_insample=y_insample, y_hat_insample=y_hat_insample
    )["mean"]
    np.testing.assert_allclose(theirs[0], ours_total, rtol=1e-6)
    np.testing.assert_allclose(theirs[1:], ours_children, rtol=1e-6)


def test_fit_to_total_keeps_children_non_negative():
    children = np.array([[10.0], [0.5], [0.1]])
    fitted = fit_to_total(np.array([5.0]), children, np.array([1.0, 4.0, 4.0]))
    assert fitted.sum() == pytest.approx(5.0)
    assert (fitted >= 0).all()


@pytest.mark.parametrize("method", ["mint_shrink", "bottom_up"])
def test_every_split_adds_up_after_reconciliation(method):
    rng = np.random.default_rng(3)
    h = 3
    products = [f"units|product|P{i}" for i in range(6)]
    countries = [f"units|country|C{i}" for i in range(3)]
    total = "units|total|"
    forecasts = {uid: rng.uniform(0, 30, h) for uid in [total, *products, *countries]}
    forecasts[products[0]] = np.zeros(h)
    residuals = {uid: rng.normal(0, 5, 20) for uid in forecasts}
    hierarchy = [
        Split(total, "country", tuple(countries)),
        Split(total, "product", tuple(products)),
    ]
    out = reconcile(forecasts, hierarchy, residuals, method)
    for split in hierarchy:
        np.testing.assert_allclose(sum(out[c] for c in split.children), out[total], atol=1e-6)
    assert min(v.min() for v in out.values()) >= 0
    if method == "bottom_up":
        np.testing.assert_allclose(out[total], sum(forecasts[p] for p in products), atol=1e-9)


def test_shrinkage_is_between_the_diagonal_and_the_sample_covariance():
    _, _, residuals = _case(obs=200)
    w = shrunk_covariance(residuals, ridge=0)
    sample = np.cov(residuals.T)
    np.testing.assert_allclose(np.diag(w), np.diag(sample))
    off = ~np.eye(len(w), dtype=bool)
    ratio = w[off] / sample[off]
    assert np.allclose(ratio, ratio[0]) and 0 <= ratio[0] <= 1
    assert isinstance(pd.__version__, str)
