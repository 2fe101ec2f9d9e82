import numpy as np

from marketing_ai.ml.predict.churn import ChurnModel


def test_learns_the_signal_and_names_it_as_the_reason():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    y = (X[:, 2] + 0.3 * rng.normal(size=2000) > 0.5).astype(int)  # only "days_since" matters
    names = ["orders", "spend", "days_since", "tenure"]
    model = ChurnModel(n_estimators=200, num_leaves=4, min_child_samples=20).fit(
        X[:1500], y[:1500], names
    )
    p = model.predict(X[1500:])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[1500:], p) > 0.9
    risky = X[1500:][np.argsort(-p)[:20]]
    for reasons in model.reasons(risky, top=2):
        assert reasons[0]["feature"] == "days_since" and reasons[0]["contribution"] > 0
    assert all(len(r) <= 2 for r in model.reasons(X[:50], top=2))
