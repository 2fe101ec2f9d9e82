"""Item-based nearest neighbours: cosine similarity with shrinkage, top-k neighbours per item."""

import numpy as np
from scipy import sparse

from marketing_ai.ml.recommend import register


@register("itemknn")
class ItemKnn:
    def __init__(self, k: int = 100, shrink: float = 10.0) -> None:
        self.k = k
        self.shrink = shrink

    def fit(self, X) -> "ItemKnn":
        X = X.tocsc().astype(np.float32)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
        co = (X.T @ X).toarray()
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-9)
        np.fill_diagonal(sim, 0.0)
        k = min(self.k, sim.shape[0] - 1)
        # keep each item's k most similar items (columns: item j's neighbours i)
        cut = np.argpartition(-sim, k, axis=0)[:k]
        rows = cut.ravel()
        cols = np.repeat(np.arange(sim.shape[1])[None, :], k, axis=0).ravel()
        self.S = sparse.csr_matrix((sim[rows, cols], (rows, cols)), shape=sim.shape)
        self.X = X.tocsr()
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return (self.X[users] @ self.S).toarray()
