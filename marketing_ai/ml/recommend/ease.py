"""EASE (Steck 2019): a closed-form item-item linear model with a zero diagonal.

B = I - P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹; scores = X_u·B. One dense inverse of
items × items: about a second for 3,700 items; beyond ~30,000 items use item-kNN instead.
"""

import numpy as np

from marketing_ai.ml.recommend import register


@register("ease")
class Ease:
    def __init__(self, l2: float = 500.0) -> None:
        self.l2 = l2

    def fit(self, X) -> "Ease":
        gram = (X.T @ X).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        weights[np.diag_indices_from(weights)] = 0.0
        self.B = weights.astype(np.float32)
        self.X = X.tocsr().astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.X[users] @ self.B)
