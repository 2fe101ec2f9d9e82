"""EASE (Steck 2019) and DLAE (Steck 2020): closed-form item-item linear models.

EASE: B = I - P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹; scores = X_u·B, with B's diagonal held at
zero so an item cannot predict itself. One dense inverse of items × items: about a second for
3,700 items; beyond ~30,000 items use item-kNN instead.

DLAE learns B from histories where each item is dropped with probability p and has to be
predicted back from the rest. In expectation that is an L2 penalty Λⱼⱼ = λ + p/(1-p)·(XᵀX)ⱼⱼ on
item j's row, so popular items are held back more than rare ones, and the dropout itself keeps B
from the identity: B = I - P·Λ with P = (XᵀX + Λ)⁻¹. `zero_diagonal=True` keeps EASE's constraint
as well (EDLAE's form). Same cost as EASE; ranks better on MovieLens-1M and Online Retail II
(bench/recommend.py).
"""

import numpy as np

from marketing_ai.ml.recommend import register


@register("ease")
class Ease:
    def __init__(self, l2: float = 500.0) -> None:
        self.l2 = l2

    def _penalty(self, counts: np.ndarray) -> np.ndarray:
        return np.full_like(counts, self.l2)

    def fit(self, X) -> "Ease":
        gram = (X.T @ X).toarray().astype(np.float64)
        penalty = self._penalty(np.diag(gram).copy())
        gram[np.diag_indices_from(gram)] += penalty
        self.B = self._weights(np.linalg.inv(gram), penalty).astype(np.float32)
        self.X = X.tocsr().astype(np.float32)
        return self

    def _weights(self, precision: np.ndarray, penalty: np.ndarray) -> np.ndarray:
        weights = precision / (-np.diag(precision))
        weights[np.diag_indices_from(weights)] = 0.0
        return weights

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.X[users] @ self.B)


@register("dlae")
class Dlae(Ease):
    def __init__(self, l2: float = 600.0, dropout: float = 0.5, zero_diagonal: bool = False):
        if not 0.0 <= dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        super().__init__(l2)
        self.dropout, self.zero_diagonal = dropout, zero_diagonal

    def _penalty(self, counts: np.ndarray) -> np.ndarray:
        return self.l2 + self.dropout / (1.0 - self.dropout) * counts

    def _weights(self, precision: np.ndarray, penalty: np.ndarray) -> np.ndarray:
        if self.zero_diagonal:
            return super()._weights(precision, penalty)
        return np.eye(len(penalty)) - precision * penalty[None, :]
