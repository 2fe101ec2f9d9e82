"""Who to send to when a send costs money: a targeting policy chosen on the profit it earns.

A ranking learner (`learners.fit_uplift`) is chosen by its Qini coefficient, which rewards the
order of the whole list; a campaign with a price per message earns by the few cells it promotes,
so here the policy is chosen on its incremental profit directly:

- `incremental_profit`: among the customers a policy promotes, value x (treated responders -
  control responders scaled to the treated's size) - cost x treated: what promoting them earned
  on a randomised test (Starbucks' net incremental revenue when the groups are of one size);
- `CellUplift`: the uplift of each cell of a few features (small categoricals as they are,
  a continuous one cut at its training quantiles), shrunk by empirical Bayes down a hierarchy:
  the first feature's cells toward the overall uplift, each finer cell toward its parent's
  estimate, by how much its cells truly differ (method of moments: the spread of the raw cell
  uplifts less their sampling variance). A cell with few rows keeps its parent's estimate; an
  unseen cell gets it outright;
- `choose_policy`: repeated cross-validation (folds stratified on treatment x outcome, several
  fold draws) of each candidate scorer's incremental profit, promoting where value x uplift -
  cost > margin, the margin on a grid, or the top share of customers by the score; the cells'
  features are chosen greedily the same way (add the feature that earns most, stop when none
  adds). The best candidate and its rule are refitted on every row.

Everything is chosen on the training rows alone: the fold profits are summed over the draws,
and a figure on held-out data is for the one policy chosen.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from marketing_ai.ml.uplift.learners import (
    _fit_one,
    _folds,
    lightgbm_classifier,
    lightgbm_regressor,
)


def incremental_profit(y, treated, promote, *, value: float, cost: float) -> float:
    """value x (treated responders - control responders x treated / control) - cost x treated,
    among the promoted rows; 0 when nobody is promoted (a group empty among them: its responders
    count as none)."""
    y, treated, promote = (np.asarray(a) for a in (y, treated, promote))
    chosen = promote.astype(bool)
    t = treated[chosen] == 1
    n_t, n_c = int(t.sum()), int((~t).sum())
    y_t = float(y[chosen][t].sum())
    y_c = float(y[chosen][~t].sum()) * (n_t / n_c if n_c else 0.0)
    return value * (y_t - y_c) - cost * n_t


@dataclass(frozen=True)
class Feature:
    """A column of X that cuts customers into cells: its own values when `bins` is None
    (a small categorical), else `bins` cells between its training quantiles."""

    column: int
    bins: int | None = None

    def label(self, names: Sequence[str] | None = None) -> str:
        name = names[self.column] if names else f"x{self.column}"
        return name if self.bins is None else f"{name}/{self.bins}"


class CellUplift:
    """Hierarchically shrunk uplift per cell of `features` (see the module's note)."""

    def __init__(self, features: Sequence[Feature]):
        self.features = tuple(features)

    def _codes(self, X: np.ndarray) -> np.ndarray:
        columns = []
        for f, edges in zip(self.features, self.edges, strict=True):
            column = X[:, f.column]
            columns.append(column if edges is None else np.searchsorted(edges, column))
        return np.column_stack(columns) if columns else np.zeros((len(X), 0))

    def fit(self, X, treated, y) -> "CellUplift":
        X = np.asarray(X, dtype=float)
        t = np.asarray(treated).astype(int) == 1
        y = np.asarray(y).astype(float)
        self.edges = [
            None
            if f.bins is None
            else np.unique(np.quantile(X[:, f.column], np.linspace(0, 1, f.bins + 1)[1:-1]))
            for f in self.features
        ]
        codes = self._codes(X)
        base_sent, base_held = float(y[t].mean()), float(y[~t].mean())
        self.overall = base_sent - base_held
        # per level: {cell key: posterior uplift}; level 0 is the whole population
        self.levels: list[dict[tuple, float]] = [{(): self.overall}]
        self.spread: list[float] = []
        for depth in range(1, len(self.features) + 1):
            keys, inverse = np.unique(codes[:, :depth], axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            n_t = np.bincount(inverse, weights=t, minlength=len(keys))
            n_c = np.bincount(inverse, weights=~t, minlength=len(keys))
            s_t = np.bincount(inverse, weights=y * t, minlength=len(keys))
            s_c = np.bincount(inverse, weights=y * ~t, minlength=len(keys))
            parent = np.array(
                [self.levels[depth - 1][tuple(k[: depth - 1])] for k in keys], dtype=float
            )
            both = (n_t > 0) & (n_c > 0)
            # each rate with one row's worth of the overall rate, so a cell without responders
            # still has a sampling variance
            p_t = (s_t + base_sent) / (n_t + 1.0)
            p_c = (s_c + base_held) / (n_c + 1.0)
            raw = p_t - p_c
            variance = p_t * (1 - p_t) / (n_t + 1) + p_c * (1 - p_c) / (n_c + 1)
            w = n_t + n_c
            excess = np.average((raw - parent) ** 2, weights=w) - np.average(variance, weights=w)
            tau2 = max(float(excess), 0.0)
            weight = np.where(both, tau2 / (tau2 + variance), 0.0)
            posterior = parent + weight * (raw - parent)
            self.spread.append(tau2**0.5)
            self.levels.append({tuple(k): float(v) for k, v in zip(keys, posterior, strict=True)})
        return self

    def predict(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        keys, inverse = np.unique(self._codes(X), axis=0, return_inverse=True)
        values = np.empty(len(keys))
        for i, row in enumerate(map(tuple, keys)):
            # the finest level that saw this cell (level 0, the population, saw every one)
            depth = next(d for d in range(len(row), -1, -1) if row[:d] in self.levels[d])
            values[i] = self.levels[depth][row[:depth]]
        return values[inverse.reshape(-1)]


Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]
MARGINS = tuple(np.round(np.arange(-0.10, 0.1001, 0.01), 2))
SHARES = tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2))


def mean_of(*fits: Fit) -> Fit:
    """A `Fit` whose uplift is the mean of `fits`' (e.g. cells beside a learner)."""

    def fit(X, treated, y):
        predicts = [f(X, treated, y) for f in fits]
        return lambda Z: np.mean([p(Z) for p in predicts], axis=0)

    return fit


def learner(kind: str) -> Fit:
    """A `Fit` of one of `learners.LEARNERS` on its default base (LightGBM for the boosted)."""

    def fit(X, treated, y):
        n = len(y)
        return _fit_one(
            kind, X, treated, y, lambda: lightgbm_classifier(0, n), lambda: lightgbm_regressor(0, n)
        ).uplift

    return fit


def cells(features: Sequence[Feature]) -> Fit:
    """A `Fit` for `choose_policy`: `CellUplift` on `features`."""

    def fit(X, treated, y):
        return CellUplift(features).fit(X, treated, y).predict

    return fit


@dataclass
class Validation:
    """One candidate's cross-validated incremental profit per customer, per margin and share."""

    by_margin: np.ndarray
    by_share: np.ndarray

    def best(self) -> tuple[str, float, float]:
        """(rule, its threshold, profit per customer) at the candidate's best rule."""
        m, s = int(np.argmax(self.by_margin)), int(np.argmax(self.by_share))
        if self.by_margin[m] >= self.by_share[s]:
            return "margin", MARGINS[m], float(self.by_margin[m])
        return "share", SHARES[s], float(self.by_share[s])


def _top(score: np.ndarray, share: float) -> np.ndarray:
    promote = np.zeros(len(score), dtype=bool)
    promote[np.argsort(-score, kind="stable")[: int(round(share * len(score)))]] = True
    return promote


def cross_validate(
    fit: Fit, X, treated, y, *, value: float, cost: float, folds=3, draws=5, seed=0
) -> Validation:
    """Incremental profit per customer of `fit`'s policies on held-out folds: each fold draw
    deals the rows into `folds` folds within treatment x outcome, fits on all folds but one and
    counts the profit of each rule on the one left; summed over folds and draws, divided by
    draws x rows."""
    X = np.asarray(X, dtype=float)
    treated = np.asarray(treated).astype(int)
    y = np.asarray(y).astype(int)
    by_margin, by_share = np.zeros(len(MARGINS)), np.zeros(len(SHARES))
    for draw in range(draws):
        fold = _folds(treated, y, folds, seed + draw)
        for k in range(folds):
            fit_rows, held = fold != k, fold == k
            score = fit(X[fit_rows], treated[fit_rows], y[fit_rows])(X[held])
            gain = value * score - cost
            yh, th = y[held], treated[held]
            for i, margin in enumerate(MARGINS):
                by_margin[i] += incremental_profit(yh, th, gain > margin, value=value, cost=cost)
            for i, share in enumerate(SHARES):
                by_share[i] += incremental_profit(
                    yh, th, _top(score, share), value=value, cost=cost
                )
    return Validation(by_margin / (draws * len(y)), by_share / (draws * len(y)))


def choose_cells(
    X,
    treated,
    y,
    candidates: Sequence[Feature],
    *,
    value: float,
    cost: float,
    folds=3,
    draws=5,
    seed=0,
    names: Sequence[str] | None = None,
) -> tuple[tuple[Feature, ...], list[tuple[str, float]]]:
    """The cells' features, added one at a time, each the one whose cells earn the most in
    cross-validation (at their best rule), until none adds; one feature per column.
    Returns the features and the path: (the features so far, profit per customer)."""
    chosen: tuple[Feature, ...] = ()
    best = cross_validate(
        cells(chosen), X, treated, y, value=value, cost=cost, folds=folds, draws=draws, seed=seed
    ).best()[2]
    path = [("(none)", best)]
    while True:
        used = {f.column for f in chosen}
        trials = {}
        for f in candidates:
            if f.column in used:
                continue
            trials[f] = cross_validate(
                cells((*chosen, f)), X, treated, y,
                value=value, cost=cost, folds=folds, draws=draws, seed=seed,
            ).best()[2]  # fmt: skip
        if not trials:
            break
        f = max(trials, key=trials.get)
        if trials[f] <= best:
            break
        chosen, best = (*chosen, f), trials[f]
        path.append((" x ".join(g.label(names) for g in chosen), best))
    return chosen, path


@dataclass
class ProfitPolicy:
    """The chosen candidate refitted on every row, and its rule: promote where value x uplift -
    cost > `threshold` ("margin") or the top `threshold` share by uplift ("share")."""

    name: str
    rule: str
    threshold: float
    value: float
    cost: float
    predict: Callable[[np.ndarray], np.ndarray]
    validation: dict[str, tuple[str, float, float]] = field(default_factory=dict)

    def promote(self, X) -> np.ndarray:
        score = self.predict(np.asarray(X, dtype=float))
        if self.rule == "share":
            return _top(score, self.threshold)
        return self.value * score - self.cost > self.threshold


def choose_policy(
    candidates: dict[str, Fit],
    X,
    treated,
    y,
    *,
    value: float,
    cost: float,
    folds=3,
    draws=5,
    seed=0,
) -> ProfitPolicy:
    """Each candidate's cross-validated profit at its best rule; the best one refitted on all
    rows. `validation` holds every candidate's (rule, threshold, profit per customer)."""
    if not candidates:
        raise ValueError("at least one candidate")
    X = np.asarray(X, dtype=float)
    treated = np.asarray(treated).astype(int)
    y = np.asarray(y).astype(int)
    validation = {
        name: cross_validate(
            fit, X, treated, y, value=value, cost=cost, folds=folds, draws=draws, seed=seed
        ).best()
        for name, fit in candidates.items()
    }
    name = max(validation, key=lambda n: validation[n][2])
    rule, threshold, _ = validation[name]
    return ProfitPolicy(
        name, rule, threshold, value, cost, candidates[name](X, treated, y), validation
    )
