"""Uplift learners: who a message changes, estimated from a randomised send (treated = sent,
control = held out), on LightGBM or any scikit-learn-style classifier and regressor.

- S-learner: one classifier on the features plus the treatment flag; uplift = p(x, 1) - p(x, 0).
- T-learner: one classifier per group; uplift = p_sent(x) - p_held(x).
- X-learner (Kuenzel et al. 2019): the T-learner's outcome models impute each customer's effect
  (a treated customer's outcome minus what the control model expected, and the other way round),
  a regressor per group learns those effects, and the two are mixed by the treated share.
- Class transformation (Jaskowski & Jaroszewicz 2012): z = 1 for treated responders and control
  non-responders; with the groups weighted to equal size, uplift = 2 P(z = 1 | x) - 1.
- Logistic T-learner: the T-learner on a logistic regression with small categoricals one-hot
  (`linear.py`), whatever `classifier` is: it reads uplift that sits in cells of a few codes.

`fit_uplift` scores each learner by cross-validation (3 folds stratified on treatment x outcome:
fitted on two, its Qini coefficient on the third, the mean over the folds; one 70/30 split was
too noisy to choose on) and refits the best (or the mean of all of them, when that validates
better) on everything; a chosen booster is also tried at twice the trees on the same folds. Each
customer's reasons come from a small tree model fitted to the chosen learner's uplift scores, read
with TreeSHAP (LightGBM's `pred_contrib`), so every learner explains itself the same way and the
contributions are in uplift units.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from marketing_ai.ml.uplift import linear
from marketing_ai.ml.uplift.metrics import qini_coefficient

LEARNERS = ("s", "t", "x", "class_transformation", "logistic_t")
BOOSTED = ("s", "t", "x", "class_transformation")  # those fitted on `classifier` / `regressor`
ENSEMBLE = "mean"
TREES, LONGER = 200, 400


def lightgbm_classifier(seed: int = 0, n: int = 0, trees: int = TREES):
    """A small, strongly regularised booster: uplift signals are a few points of response
    rate, and deep trees fit the noise in them."""
    import lightgbm as lgb  # only fitting needs it

    return lgb.LGBMClassifier(**_booster_params(seed, n, trees))


def lightgbm_regressor(seed: int = 0, n: int = 0, trees: int = TREES):
    import lightgbm as lgb  # numpy/LightGBM with it: loaded on use, not in the web process

    return lgb.LGBMRegressor(**_booster_params(seed, n, trees))


def _booster_params(seed: int, n: int, trees: int = TREES) -> dict:
    return {
        "n_estimators": trees,
        "learning_rate": 0.03,
        "num_leaves": 8,
        # a few hundred rows still get splits; tens of thousands get well-populated leaves
        "min_child_samples": int(min(400, max(10, n // 50))),
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 5.0,
        "random_state": seed,
        # under 5,000 rows a second thread saves little, and on a busy machine (a worker beside
        # others, the test suite) LightGBM's waiting threads made each fit several times slower
        "n_jobs": 1 if n < 5_000 else 2,
        "verbose": -1,
    }


def _proba(model, X) -> np.ndarray:
    return model.predict_proba(X)[:, 1]


@dataclass
class _Fitted:
    """One learner, fitted: its uplift and its two outcome probabilities per row."""

    kind: str
    parts: dict
    treated_share: float

    def outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.parts
        if self.kind == "s":
            ones, zeros = np.ones((len(X), 1)), np.zeros((len(X), 1))
            return _proba(p["model"], np.hstack([X, ones])), _proba(
                p["model"], np.hstack([X, zeros])
            )
        if self.kind == "t":
            return _proba(p["sent"], X), _proba(p["held"], X)
        if self.kind == "logistic_t":
            E = p["encoder"].transform(X)
            return _proba(p["sent"], E), _proba(p["held"], E)
        held = _proba(p["held"], X)
        return np.clip(held + self.uplift(X), 0.0, 1.0), held

    def uplift(self, X: np.ndarray) -> np.ndarray:
        p = self.parts
        if self.kind == "x":
            g = self.treated_share
            return g * p["effect_held"].predict(X) + (1 - g) * p["effect_sent"].predict(X)
        if self.kind == "class_transformation":
            return 2 * _proba(p["z"], X) - 1
        sent, held = self.outcomes(X)
        return sent - held


def _fit_one(kind: str, X, treated, y, classifier, regressor) -> _Fitted:
    t = treated == 1
    share = float(t.mean())
    if kind == "s":
        model = classifier().fit(np.hstack([X, treated[:, None].astype(float)]), y)
        return _Fitted(kind, {"model": model}, share)
    if kind == "logistic_t":
        encoder = linear.Encoder().fit(X)
        E = encoder.transform(X)
        sent = linear.logistic_classifier().fit(E[t], y[t])
        held = linear.logistic_classifier().fit(E[~t], y[~t])
        return _Fitted(kind, {"encoder": encoder, "sent": sent, "held": held}, share)
    sent = classifier().fit(X[t], y[t])
    held = classifier().fit(X[~t], y[~t])
    if kind == "t":
        return _Fitted(kind, {"sent": sent, "held": held}, share)
    if kind == "x":
        effect_sent = regressor().fit(X[t], y[t] - _proba(held, X[t]))
        effect_held = regressor().fit(X[~t], _proba(sent, X[~t]) - y[~t])
        return _Fitted(
            kind, {"held": held, "effect_sent": effect_sent, "effect_held": effect_held}, share
        )
    if kind == "class_transformation":
        z = np.where(t, y, 1 - y)
        # weights that make the two groups equal in size, so 2 P(z=1) - 1 is the uplift
        weight = np.where(t, 0.5 / share, 0.5 / (1 - share))
        model = classifier().fit(X, z, sample_weight=weight)
        return _Fitted(kind, {"z": model, "held": held}, share)
    raise ValueError(f"unknown learner {kind!r}; expected one of {', '.join(LEARNERS)}")


def _folds(treated, y, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, 0 .. folds - 1, dealt out within each treatment x outcome cell."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for cell in range(4):
        rows = np.flatnonzero(treated * 2 + y == cell)
        rng.shuffle(rows)
        fold[rows] = np.arange(len(rows)) % folds
    return fold


@dataclass
class UpliftModel:
    """The chosen learner (or the mean of all of them), fitted on all the data."""

    learner: str
    feature_names: list[str]
    fitted: list[_Fitted]
    validation: dict = field(default_factory=dict)
    trees: int | None = None  # the booster's size when the learner is one of BOOSTED on LightGBM
    explainer: object = None
    explainer_r2: float = float("nan")

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return np.mean([f.uplift(X) for f in self.fitted], axis=0)

    def outcomes(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(outcome | sent), P(outcome | not sent)) per row."""
        X = np.asarray(X, dtype=float)
        pairs = [f.outcomes(X) for f in self.fitted]
        return np.mean([p[0] for p in pairs], axis=0), np.mean([p[1] for p in pairs], axis=0)

    def reasons(self, X: np.ndarray, top: int = 3) -> list[list[dict]]:
        """Per row, the features that moved its uplift most, largest first:
        [{feature, value, contribution}] with contributions in uplift (response-rate) units
        relative to the average customer; they sum, with the average, to the explainer's score."""
        X = np.asarray(X, dtype=float)
        contributions = self.explainer.booster_.predict(X, pred_contrib=True)[:, :-1]
        order = np.argsort(-np.abs(contributions), axis=1)[:, :top]
        return [
            [
                {
                    "feature": self.feature_names[j],
                    "value": _plain(X[i, j]),
                    "contribution": round(float(contributions[i, j]), 5),
                }
                for j in order[i]
                if contributions[i, j] != 0
            ]
            for i in range(len(X))
        ]


def fit_uplift(
    X,
    treated,
    y,
    *,
    feature_names: list[str] | None = None,
    learners: tuple[str, ...] = LEARNERS,
    seed: int = 0,
    folds: int = 3,
    classifier: Callable | None = None,
    regressor: Callable | None = None,
) -> UpliftModel:
    """Fits every learner in `learners` on the training part, keeps the one (or the mean of
    all) with the best validation Qini coefficient, and refits it on all rows.
    `classifier` / `regressor`: factories of scikit-learn-style models (default LightGBM)."""
    X = np.asarray(X, dtype=float)
    treated = np.asarray(treated).astype(int)
    y = np.asarray(y).astype(int)
    if X.ndim != 2 or len(X) != len(treated) or len(X) != len(y):
        raise ValueError("X must be (rows, features), with one treated flag and outcome per row")
    if not np.isin(treated, (0, 1)).all() or not np.isin(y, (0, 1)).all():
        raise ValueError("treated and y must be 0 or 1")
    cells = np.bincount(treated * 2 + y, minlength=4)
    if (cells < 10).any():
        raise ValueError(
            "too few rows to learn uplift: each of treated/control x responded/not needs at "
            f"least 10 (have {cells.tolist()} for control-no, control-yes, sent-no, sent-yes)"
        )
    unknown = set(learners) - set(LEARNERS)
    if unknown or not learners:
        raise ValueError(f"learners are some of {', '.join(LEARNERS)}")
    names = list(feature_names or [f"f{i}" for i in range(X.shape[1])])
    if len(names) != X.shape[1]:
        raise ValueError("one feature name per column")

    own_booster = classifier is None and regressor is None

    def factories(n, trees=TREES):
        return (
            classifier or (lambda: lightgbm_classifier(seed, n, trees)),
            regressor or (lambda: lightgbm_regressor(seed, n, trees)),
        )

    fold = _folds(treated, y, folds, seed)

    def cross_validated(kinds: tuple[str, ...], trees: int) -> dict[str, float]:
        clf, reg = factories(int(len(y) * (folds - 1) / folds), trees)
        per_fold: dict[str, list[float]] = {}
        for k in range(folds):
            fit_rows, held = fold != k, fold == k
            scores = {
                kind: _fit_one(kind, X[fit_rows], treated[fit_rows], y[fit_rows], clf, reg).uplift(
                    X[held]
                )
                for kind in kinds
            }
            if len(kinds) > 1:
                scores[ENSEMBLE] = np.mean(list(scores.values()), axis=0)
            for kind, score in scores.items():
                per_fold.setdefault(kind, []).append(
                    qini_coefficient(y[held], treated[held], score)
                )
        return {kind: round(float(np.mean(q)), 5) for kind, q in per_fold.items()}

    validation = cross_validated(learners, TREES)
    best = max(validation, key=lambda k: (validation[k], k == ENSEMBLE))
    trees = TREES if own_booster else None
    if own_booster and best in BOOSTED:
        # The chosen booster also tried twice as long on the same folds, kept where it validates
        # better: on Hillstrom's training halves 400 trees beat 200 on three seeds of five.
        longer = f"{best}, {LONGER} trees"
        validation[longer] = cross_validated((best,), LONGER)[best]
        if validation[longer] > validation[best]:
            trees = LONGER
    clf, reg = factories(len(X), trees or TREES)
    chosen = learners if best == ENSEMBLE else (best,)
    model = UpliftModel(
        learner=best,
        feature_names=names,
        fitted=[_fit_one(kind, X, treated, y, clf, reg) for kind in chosen],
        validation=validation,
        trees=trees if best in BOOSTED or best == ENSEMBLE else None,
    )
    score = model.predict(X)
    model.explainer = lightgbm_regressor(seed, len(X)).fit(X, score)
    fitted = model.explainer.predict(X)
    spread = float(np.var(score))
    model.explainer_r2 = (
        round(1 - float(np.mean((score - fitted) ** 2)) / spread, 4) if spread else 1.0
    )
    return model


def _plain(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 4)
