"""Customer lifetime value: BG/NBD (Fader, Hardie & Lee 2005) for how many purchases and whether the
customer is still active, Gamma-Gamma (Fader, Hardie & Lee 2005b) for how much each is worth.

Inputs per customer, in any time unit (weeks in the CDNOW literature): x = repeat purchases,
t_x = time of the last purchase, T = time since the first purchase; m = mean repeat spend.
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


def _fit(negative_ll, start: np.ndarray, upper: np.ndarray | None = None) -> np.ndarray:
    """Maximum likelihood over positive parameters (optimised on their logarithms), each at
    most `upper` if given.

    Where customers' rates hardly differ, the likelihood is flat in the gamma shapes, which then
    drift upwards for thousands of evaluations without changing a forecast: evaluations are
    capped at five times what CDNOW's fits take to converge."""
    bounds = None if upper is None else [(None, np.log(u)) for u in upper]
    with np.errstate(all="ignore"):  # the search tries parameters where the terms overflow
        result = optimize.minimize(
            lambda p: negative_ll(np.exp(p)),
            np.log(start),
            method="Nelder-Mead",
            bounds=bounds,
            options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000, "maxfev": 4000},
        )
    return np.exp(result.x)


@dataclass
class BetaGeoNBD:
    r: float = 0.0
    alpha: float = 0.0
    a: float = 0.0
    b: float = 0.0

    @staticmethod
    def log_likelihood(params, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = params
        ln_a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        ln_a2 = (
            special.gammaln(a + b)
            + special.gammaln(b + x)
            - special.gammaln(b)
            - special.gammaln(a + b + x)
        )
        ln_a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            ln_a4 = np.where(
                x > 0,
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        return ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)

    def fit(self, x, t_x, T) -> "BetaGeoNBD":
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        self.r, self.alpha, self.a, self.b = _fit(
            lambda p: -self.log_likelihood(p, x, t_x, T).sum(), np.array([1.0, 1.0, 1.0, 1.0])
        )
        return self

    def probability_alive(self, x, t_x, T) -> np.ndarray:
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        ratio = (self.a / np.maximum(self.b + x - 1, 1e-300)) * (
            (self.alpha + T) / (self.alpha + t_x)
        ) ** (self.r + x)
        return np.where(x > 0, 1.0 / (1.0 + ratio), 1.0)

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        """Expected repeat purchases in (T, T + t] for customers with history (x, t_x, T)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
        tail = np.where(
            x > 0,
            (a / np.maximum(b + x - 1, 1e-300)) * ((alpha + T) / (alpha + t_x)) ** (r + x),
            0.0,
        )
        return head * body / (1 + tail)


@dataclass
class GammaGamma:
    p: float = 0.0
    q: float = 0.0
    v: float = 0.0

    @staticmethod
    def log_likelihood(params, x, m) -> np.ndarray:
        p, q, v = params
        return (
            special.gammaln(p * x + q)
            - special.gammaln(p * x)
            - special.gammaln(q)
            + q * np.log(v)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(v + x * m)
        )

    def fit(self, x, m) -> "GammaGamma":
        """x: repeat purchases (> 0 only), m: their mean value."""
        x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
        keep = (x > 0) & (m > 0)
        self.p, self.q, self.v = _fit(
            lambda prm: -self.log_likelihood(prm, x[keep], m[keep]).sum(), np.array([1.0, 1.0, 1.0])
        )
        return self

    def expected_value(self, x, m) -> np.ndarray:
        """Expected mean transaction value, shrunk towards the population mean for few purchases."""
        x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
        population = self.p * self.v / (self.q - 1)
        weight = self.p * x / (self.p * x + self.q - 1)
        return np.where(x > 0, (1 - weight) * population + weight * m, population)


def _log_hyp2f1(a, b, c, z) -> np.ndarray:
    """log ₂F₁(a, b; c; z) for 0 <= z < 1. Where c - a - b < 0 the series grows without bound as
    z nears 1 (a heavy buyer, a rate far from the other's scale) and overflows; Euler's
    transformation ₂F₁(a, b; c; z) = (1 - z)^(c-a-b) ₂F₁(c - a, c - b; c; z) keeps it finite."""
    excess = c - a - b
    euler = excess < 0
    a, b = np.where(euler, c - a, a), np.where(euler, c - b, b)
    with np.errstate(divide="ignore"):
        return np.where(euler, excess * np.log1p(-z), 0.0) + np.log(special.hyp2f1(a, b, c, z))


# Pareto/NBD's gamma shapes (r, s) stay at most this: a larger shape means customers' rates hardly
# differ, the forecasts hardly change beyond it, and ₂F₁ takes far longer to evaluate there (an
# uncapped fit can drift to large shapes and spend minutes on it).
SHAPE_CAP = 5.0
UPPER = np.array([SHAPE_CAP, np.inf, SHAPE_CAP, np.inf])


def _capped(log_params: np.ndarray) -> np.ndarray:
    """r, α, s, β from their logarithms, the shapes held at SHAPE_CAP (flat beyond it: Powell's
    bounded search wandered off to effects of 10^8 on CDNOW)."""
    return np.minimum(np.exp(log_params), UPPER)


@dataclass
class ParetoNBD:
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987), likelihood as in Fader, Hardie & Lee's
    2005 note: purchases Poisson(λ) while alive, lifetime exponential(μ), λ ~ Γ(r, α),
    μ ~ Γ(s, β)."""

    r: float = 0.0
    alpha: float = 0.0
    s: float = 0.0
    beta: float = 0.0

    @staticmethod
    def _log_a0(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
        # alpha and beta may be per-customer arrays (ParetoNBDCovariates)
        big = np.maximum(alpha, beta)
        second = np.where(np.asarray(alpha) >= beta, s + 1, r + x)
        d = np.abs(alpha - beta)
        n = r + s + x

        def term(t):
            return _log_hyp2f1(n, second, n + 1, d / (big + t)) - n * np.log(big + t)

        first, last = term(t_x), term(T)
        # log(e^first - e^last); -inf (A0 = 0) for a customer whose last purchase is today
        with np.errstate(divide="ignore"):
            return first + np.log1p(-np.exp(np.minimum(last - first, 0.0)))

    @classmethod
    def log_likelihood(cls, params, x, t_x, T) -> np.ndarray:
        r, alpha, s, beta = params
        base = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        stay = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        leave = np.log(s / (r + s + x)) + cls._log_a0(r, alpha, s, beta, x, t_x, T)
        return base + np.logaddexp(stay, leave)

    def fit(self, x, t_x, T) -> "ParetoNBD":
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))

        def negative(p):
            value = -self.log_likelihood(p, x, t_x, T).sum()
            return value if np.isfinite(value) else 1e12

        start = np.array([0.5, 10.0, 0.5, 10.0])
        self.r, self.alpha, self.s, self.beta = _fit(negative, start, UPPER)
        return self

    def probability_alive(self, x, t_x, T) -> np.ndarray:
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        p = (self.r, self.alpha, self.s, self.beta)
        r, alpha, s, beta = p
        stay = (
            special.gammaln(r + x)
            - special.gammaln(r)
            + r * np.log(alpha)
            + s * np.log(beta)
            - (r + x) * np.log(alpha + T)
            - s * np.log(beta + T)
        )
        return np.exp(stay - self.log_likelihood(p, x, t_x, T))

    def expected_purchases(self, t, x, t_x, T) -> np.ndarray:
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        r, alpha, s, beta = self.r, self.alpha, self.s, self.beta
        alive = self.probability_alive(x, t_x, T)
        rate = (r + x) * (beta + T) / ((alpha + T) * (s - 1))
        return alive * rate * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))


@dataclass
class ParetoNBDCovariates:
    """Pareto/NBD whose rates depend on what is known of each customer when they arrive (the
    first order's value and size, the channel...), as in Fader & Hardie's note on time-invariant
    covariates: α_i = α·exp(-z_i·γ_purchase) and β_i = β·exp(-z_i·γ_dropout), so a positive
    effect means more purchases or an earlier end. Covariates are standardised internally."""

    base: ParetoNBD | None = None
    purchase_effects: np.ndarray | None = None
    dropout_effects: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, x, t_x, T, z, plain: ParetoNBD | None = None) -> "ParetoNBDCovariates":
        """`plain`: the Pareto/NBD already fitted to the same customers, if there is one."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        z = np.asarray(z, dtype=float).reshape(len(x), -1)
        self.mean, self.scale = z.mean(axis=0), z.std(axis=0) + 1e-12
        z = (z - self.mean) / self.scale
        k = z.shape[1]
        plain = plain or ParetoNBD().fit(x, t_x, T)

        def negative(p):
            r, alpha, s, beta = _capped(p[:4])
            alphas, betas = alpha * np.exp(-z @ p[4 : 4 + k]), beta * np.exp(-z @ p[4 + k :])
            value = -ParetoNBD.log_likelihood((r, alphas, s, betas), x, t_x, T).sum()
            return value if np.isfinite(value) else 1e12

        # From the plain model's estimate, no effects; Powell copes with the mixed signs. Capped
        # as `_fit` is, for the same reason.
        start = np.r_[np.log([plain.r, plain.alpha, plain.s, plain.beta]), np.zeros(2 * k)]
        options = {"xtol": 1e-6, "ftol": 1e-10, "maxiter": 50000, "maxfev": 8000}
        with np.errstate(all="ignore"):
            result = optimize.minimize(negative, start, method="Powell", options=options)
        self.base = ParetoNBD(*_capped(result.x[:4]))
        self.purchase_effects, self.dropout_effects = result.x[4 : 4 + k], result.x[4 + k :]
        return self

    def _for(self, z) -> ParetoNBD:
        """The Pareto/NBD of customers with covariates z (α and β per customer)."""
        z = (np.asarray(z, dtype=float).reshape(len(z), -1) - self.mean) / self.scale
        base = self.base
        return ParetoNBD(
            base.r,
            base.alpha * np.exp(-z @ self.purchase_effects),
            base.s,
            base.beta * np.exp(-z @ self.dropout_effects),
        )

    def log_likelihood(self, x, t_x, T, z) -> float:
        model = self._for(z)
        params = (model.r, model.alpha, model.s, model.beta)
        return float(
            ParetoNBD.log_likelihood(
                params, *(np.asarray(v, dtype=float) for v in (x, t_x, T))
            ).sum()
        )

    def probability_alive(self, x, t_x, T, z) -> np.ndarray:
        return self._for(z).probability_alive(x, t_x, T)

    def expected_purchases(self, t, x, t_x, T, z) -> np.ndarray:
        return self._for(z).expected_purchases(t, x, t_x, T)
