"""Churn (or purchase-propensity) classifier: LightGBM on tabular customer features, with each
score's top reasons from LightGBM's own feature contributions (TreeSHAP, `pred_contrib`)."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ChurnModel:
    """Fits on a feature matrix (rows = customers) and a 0/1 label; predicts probabilities."""

    num_leaves: int = 4
    learning_rate: float = 0.02
    n_estimators: int = 600
    min_child_samples: int = 100
    feature_names: list[str] = field(default_factory=list)
    seed: int = 0

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        feature_names: list[str] | None = None,
        categorical: list[int] | None = None,
    ) -> "ChurnModel":
        # lightgbm: only fitting needs it (a stored model brings it back when unpickled)
        import lightgbm as lgb

        self.feature_names = list(feature_names or [f"f{i}" for i in range(X.shape[1])])
        self.booster = lgb.train(
            {
                "objective": "binary",
                "num_leaves": self.num_leaves,
                "learning_rate": self.learning_rate,
                # a small shop's few hundred customers still get splits
                "min_child_samples": min(self.min_child_samples, max(5, len(X) // 20)),
                "feature_fraction": 0.8,
                "bagging_fraction": 0.8,
                "bagging_freq": 1,
                "lambda_l2": 1.0,
                "seed": self.seed,
                "verbose": -1,
                "num_threads": 2,
            },
            lgb.Dataset(
                X,
                label=y,
                feature_name=self.feature_names,
                categorical_feature=categorical or "auto",
            ),
            num_boost_round=self.n_estimators,
        )
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X)

    def reasons(self, X: np.ndarray, top: int = 3) -> list[list[dict]]:
        """Per row, the features that pushed the score up most: [{feature, value, contribution}]
        with contributions in log-odds (they sum, with the bias, to the row's raw score)."""
        contributions = self.booster.predict(X, pred_contrib=True)[:, :-1]
        order = np.argsort(-contributions, axis=1)[:, :top]
        return [
            [
                {
                    "feature": self.feature_names[j],
                    "value": _plain(X[i, j]),
                    "contribution": round(float(contributions[i, j]), 4),
                }
                for j in order[i]
                if contributions[i, j] > 0
            ]
            for i in range(len(X))
        ]


def _plain(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 4)
