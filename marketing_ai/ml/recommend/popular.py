"""Most popular items: the fallback for customers with no history, and the floor to beat."""

import numpy as np

from marketing_ai.ml.recommend import register


@register("popular")
class Popular:
    def fit(self, X) -> "Popular":
        self.counts = np.asarray(X.sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts))).copy()
