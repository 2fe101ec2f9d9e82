"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008): `implicit` library."""

import numpy as np

from marketing_ai.ml.recommend import register


@register("als")
class Als:
    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> None:
        self.params = {
            "factors": factors,
            "regularization": regularization,
            "alpha": alpha,
            "iterations": iterations,
            "random_state": seed,
        }

    def fit(self, X) -> "Als":
        # implicit: only the ALS model needs it
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises over users itself; BLAS threads on top of that only contend.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(**self.params, calculate_training_loss=False)
            model.fit(X.tocsr().astype(np.float32), show_progress=False)
        self.users = np.asarray(model.user_factors)
        self.items = np.asarray(model.item_factors)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.users[users] @ self.items.T
