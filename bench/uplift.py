"""Uplift on two randomised marketing tests, ours against scikit-uplift and causalml in one run.

Hillstrom (MineThatData 2008; ../shared/data/hillstrom): women's e-mail against no e-mail,
outcome a visit. scikit-uplift's protocol: a 50/50 split stratified on treatment x outcome, seed
42, then the same over 5 seeds (42..46). Each model is scored on the test half with uplift@30%
(scikit-uplift's `by_group` strategy, the one its pipeline notebook's 0.066 uses) and the Qini
coefficient normalised as causalml does since its #799 (0 = random; 95% bootstrap interval on
seed 42; over the seeds the mean with a t interval). The libraries run on LightGBM twice: with
LightGBM's defaults, and with our booster's settings, and "their best" is the best of all of
those on the test half (chosen after the fact, which flatters them; ours picks its learner on a
validation part of the training half).

Starbucks (../shared/data/starbucks, the exercise's Training / Test): ours is the policy chosen
on Training's net incremental revenue alone (`starbucks_profit_policy`: empirical-Bayes cell
uplift, its cells' features chosen greedily by repeated 3-fold CV, beside the logistic
T-learner and their mean, each at its best margin or share, compared on fresh fold draws).
Beside it, as before: the top share by fit_uplift's learner (the share by 3-fold CV of the NIR
over 3 fold draws) and the rule "promote when 10 x predicted uplift > $0.15". On Test, the
incremental response rate (IRR) and net incremental revenue (NIR) of each policy as the
exercise's `test_results` computes them.

    .venv/bin/python bench/uplift.py [--quick] [--only hillstrom|starbucks]
"""

import argparse
import sys
import time
import warnings
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from bench import services  # noqa: E402
from marketing_ai.ml.uplift import metrics, policy  # noqa: E402
from marketing_ai.ml.uplift.learners import (  # noqa: E402
    _booster_params,
    fit_uplift,
)

warnings.filterwarnings("ignore")
DATA = services.ROOT.parent / "shared" / "data"
ANCHOR_AT_30 = 0.066  # scikit-uplift's pipeline notebook, class transformation
ANCHOR_NIR_REFERENCE, ANCHOR_IRR_REFERENCE = 189.45, 0.0188
ANCHOR_NIR_BEST, ANCHOR_IRR_BEST = 475.60, 0.0203


def hillstrom() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    with zipfile.ZipFile(DATA / "hillstrom" / "hillstrom.csv.zip") as z:
        frame = pd.read_csv(z.open("hillstrom.csv"))
    frame = frame[frame["segment"] != "Mens E-Mail"].reset_index(drop=True)
    treated = (frame["segment"] == "Womens E-Mail").astype(int).to_numpy()
    y = frame["visit"].to_numpy()
    features = pd.get_dummies(
        frame[["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]],
        columns=["zip_code", "channel"],
        dtype=float,
    )
    features["history_segment"] = frame["history_segment"].str[0].astype(float)
    return features.to_numpy(float), treated, y, list(features.columns)


def library_models(params: dict | None):
    """scikit-uplift's three approaches and causalml's three meta-learners on LightGBM."""
    import lightgbm as lgb
    from causalml.inference.meta import BaseSClassifier, BaseTClassifier, BaseXClassifier
    from sklift.models import ClassTransformation, SoloModel, TwoModels

    def clf():
        return lgb.LGBMClassifier(**(params or {"verbose": -1, "n_jobs": 2}))

    def reg():
        return lgb.LGBMRegressor(**(params or {"verbose": -1, "n_jobs": 2}))

    def sklift(model):
        def run(X, t, y, X_test):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return model().fit(X, y, t).predict(X_test)

        return run

    def causalml(model):
        def run(X, t, y, X_test):
            return np.asarray(model().fit(X, t, y).predict(X_test)).reshape(len(X_test), -1)[:, 0]

        return run

    return {
        "sklift class transformation": sklift(lambda: ClassTransformation(clf())),
        "sklift two models": sklift(
            lambda: TwoModels(estimator_trmnt=clf(), estimator_ctrl=clf(), method="vanilla")
        ),
        "sklift solo model": sklift(lambda: SoloModel(clf())),
        "causalml S-learner": causalml(lambda: BaseSClassifier(learner=clf())),
        "causalml T-learner": causalml(lambda: BaseTClassifier(learner=clf())),
        "causalml X-learner": causalml(
            lambda: BaseXClassifier(outcome_learner=clf(), effect_learner=reg())
        ),
    }


def t_interval(values: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    values = np.asarray(values)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def hillstrom_bench(seeds: list[int], figures: dict) -> list[tuple]:
    X, t, y, names = hillstrom()
    stratum = t * 2 + y
    libraries = {
        **{f"{k} (LightGBM defaults)": v for k, v in library_models(None).items()},
        **{f"{k} (our booster)": v for k, v in library_models(_booster_params(0, 10_000)).items()},
    }
    qini, at30 = {}, {}
    chosen = []
    started = time.perf_counter()
    for seed in seeds:
        train, test = train_test_split(
            np.arange(len(y)), test_size=0.5, stratify=stratum, random_state=seed
        )
        model = fit_uplift(X[train], t[train], y[train], feature_names=names, seed=seed)
        chosen.append(model.learner + (f" ({model.trees} trees)" if model.trees else ""))
        scores = {"ours": model.predict(X[test])}
        for name, run in libraries.items():
            scores[name] = run(X[train], t[train], y[train], X[test])
        for name, score in scores.items():
            q = metrics.qini_coefficient(y[test], t[test], score)
            k = metrics.uplift_at_k(y[test], t[test], score, k=0.3, strategy="by_group")
            qini.setdefault(name, []).append(q)
            at30.setdefault(name, []).append(k)
            if seed == seeds[0]:
                iv = metrics.with_interval(
                    metrics.qini_coefficient, y[test], t[test], score, rounds=200, seed=seed
                )
                figures[f"hillstrom_seed{seed}_qini_{_slug(name)}_low"] = round(iv.low, 5)
                figures[f"hillstrom_seed{seed}_qini_{_slug(name)}_high"] = round(iv.high, 5)
        print(f"  seed {seed}: ours chose {model.learner} ({model.validation}); "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    rows = []
    best_library = max((n for n in qini if n != "ours"), key=lambda n: np.mean(qini[n]))
    best_sklift = max((n for n in qini if n.startswith("sklift")), key=lambda n: np.mean(qini[n]))
    best_causalml = max(
        (n for n in qini if n.startswith("causalml")), key=lambda n: np.mean(qini[n])
    )
    for name in ["ours", best_sklift, best_causalml, *[n for n in qini if n != "ours"]]:
        if any(r[0] == name for r in rows):
            continue
        mean, low, high = t_interval(qini[name])
        k_mean = float(np.mean(at30[name]))
        rows.append((name, f"{qini[name][0]:.4f}", f"{mean:.4f} [{low:.4f}, {high:.4f}]",
                     f"{at30[name][0]:.4f} / {k_mean:.4f}"))  # fmt: skip
        slug = _slug(name)
        figures[f"hillstrom_seed{seeds[0]}_qini_{slug}"] = round(qini[name][0], 5)
        figures[f"hillstrom_mean_qini_{slug}"] = round(mean, 5)
        figures[f"hillstrom_mean_qini_{slug}_low"] = round(low, 5)
        figures[f"hillstrom_mean_qini_{slug}_high"] = round(high, 5)
        figures[f"hillstrom_seed{seeds[0]}_uplift_at_30_{slug}"] = round(at30[name][0], 5)
        figures[f"hillstrom_mean_uplift_at_30_{slug}"] = round(k_mean, 5)
    figures["hillstrom_seeds"] = len(seeds)
    figures["hillstrom_best_library_mean_qini"] = round(float(np.mean(qini[best_library])), 5)
    figures["hillstrom_ours_over_best_library_mean_qini"] = round(
        float(np.mean(qini["ours"]) / np.mean(qini[best_library])), 4
    )
    wins = sum(q > max(qini[n][i] for n in qini if n != "ours") for i, q in enumerate(qini["ours"]))
    figures["hillstrom_seeds_ours_ahead_of_every_library_model"] = wins
    print(f"  ours chose: {', '.join(chosen)}; best library model: {best_library}")
    return rows


def starbucks() -> tuple[pd.DataFrame, pd.DataFrame]:
    with zipfile.ZipFile(DATA / "starbucks" / "starbucks.zip") as z:
        return pd.read_csv(z.open("data/Training.csv")), pd.read_csv(z.open("data/Test.csv"))


def test_results(test: pd.DataFrame, promote: np.ndarray) -> tuple[float, float]:
    """IRR and NIR of promoting the rows in `promote`, as the exercise's test_results does:
    among the customers the policy would promote, the treated against the control."""
    chosen = test[promote]
    treated = chosen[chosen["Promotion"] == "Yes"]
    control = chosen[chosen["Promotion"] == "No"]
    irr = treated["purchase"].mean() - control["purchase"].mean()
    nir = 10 * treated["purchase"].sum() - 0.15 * len(treated) - 10 * control["purchase"].sum()
    return float(irr), float(nir)


def top_share(score: np.ndarray, share: float) -> np.ndarray:
    promote = np.zeros(len(score), dtype=bool)
    promote[np.argsort(-score, kind="stable")[: int(round(share * len(score)))]] = True
    return promote


def best_share(train: pd.DataFrame, X: np.ndarray, t: np.ndarray, model) -> float:
    """The share to promote that earns the most net incremental revenue in cross-validation on
    Training: 3 folds (the learner refitted on two, NIR on the third), repeated with 3 fold
    draws, the NIR summed; one draw's best share moved by 10 points between draws."""
    from marketing_ai.ml.uplift.learners import (
        LEARNERS,
        _fit_one,
        _folds,
        lightgbm_classifier,
        lightgbm_regressor,
    )

    y = train["purchase"].to_numpy()
    shares = np.round(np.arange(0.05, 1.0001, 0.05), 2)
    nir = np.zeros(len(shares))
    kinds = LEARNERS if model.learner == "mean" else (model.learner,)
    trees = model.trees or 200
    for draw in range(3):
        fold = _folds(t, y, 3, draw)
        for k in range(3):
            fit, held = fold != k, fold == k
            n = int(fit.sum())

            def clf(n=n):
                return lightgbm_classifier(0, n, trees)

            def reg(n=n):
                return lightgbm_regressor(0, n, trees)

            fitted = [_fit_one(kind, X[fit], t[fit], y[fit], clf, reg) for kind in kinds]
            score = np.mean([f.uplift(X[held]) for f in fitted], axis=0)
            part = train[held]
            for i, share in enumerate(shares):
                nir[i] += test_results(part, top_share(score, share))[1]
    return float(shares[int(np.argmax(nir))])


STARBUCKS_VALUE, STARBUCKS_COST = 10.0, 0.15


def starbucks_profit_policy(X, t, y, columns: list[str], figures: dict) -> policy.ProfitPolicy:
    """The policy chosen on Training's net incremental revenue (marketing_ai.ml.uplift.policy):
    the cells' features greedily by 3-fold CV over 5 fold draws (seeds 0..4), then the cells,
    the logistic T-learner and their mean, each at its best rule (a margin on 10 x uplift -
    0.15 or a top share), compared on 5 fresh fold draws (seeds 100..104)."""
    F = policy.Feature
    candidates = [F(0), F(1, 2), F(1, 3), F(2, 2), F(2, 3), F(2, 4), F(3), F(4), F(5), F(6)]
    money = {"value": STARBUCKS_VALUE, "cost": STARBUCKS_COST}
    features, path = policy.choose_cells(X, t, y, candidates, names=columns, seed=0, **money)
    scale = 41_650  # Test's rows: CV profit per customer scaled to Test's size
    print("  cells, greedy on Training (CV NIR at Test's size): "
          + "; ".join(f"{name} {p * scale:.0f}" for name, p in path))  # fmt: skip
    cells = policy.cells(features)
    logistic = policy.learner("logistic_t")
    chosen = policy.choose_policy(
        {
            "cells " + " x ".join(f.label(columns) for f in features): cells,
            "logistic T-learner": logistic,
            "mean of the cells and the logistic T-learner": policy.mean_of(cells, logistic),
        },
        X, t, y, seed=100, **money,
    )  # fmt: skip
    for name, (rule, threshold, profit) in chosen.validation.items():
        print(f"  CV on Training, {name}: {rule} {threshold}, NIR {profit * scale:.1f}")
        figures[f"starbucks_cv_nir_{_slug(name)}"] = round(profit * scale, 1)
    figures["starbucks_cv_nir_cells_path"] = [[n, round(p * scale, 1)] for n, p in path]
    return chosen


def starbucks_bench(figures: dict) -> list[tuple]:
    train, test = starbucks()
    columns = [f"V{i}" for i in range(1, 8)]
    X, X_test = train[columns].to_numpy(float), test[columns].to_numpy(float)
    t = (train["Promotion"] == "Yes").astype(int).to_numpy()
    y = train["purchase"].to_numpy()
    chosen = starbucks_profit_policy(X, t, y, columns, figures)
    rule = (
        f"top {chosen.threshold:.0%}"
        if chosen.rule == "share"
        else f"10 x uplift - 0.15 > {chosen.threshold}"
    )
    figures["starbucks_policy_chosen_on_training"] = f"{chosen.name}, {rule}"
    model = fit_uplift(X, t, y, feature_names=columns, seed=0)
    uplift = model.predict(X_test)
    share = best_share(train, X, t, model)
    figures["starbucks_share_chosen_on_training"] = share
    rows = []
    for key, label, promote in (
        ("ours", f"ours: {chosen.name}, {rule} (all chosen on Training's NIR)",
         chosen.promote(X_test)),
        ("top_share", f"before: {model.learner} top {share:.0%} by uplift (share from Training)",
         top_share(uplift, share)),
        ("breakeven_rule", "before: promote where 10 x uplift > $0.15", uplift > 0.015),
        ("everyone", "promote everyone", np.ones(len(test), dtype=bool)),
    ):  # fmt: skip
        irr, nir = test_results(test, promote)
        rows.append((label, f"{promote.mean():.1%}", f"{irr:.4f}", f"{nir:.2f}"))
        figures[f"starbucks_irr_{key}"] = round(irr, 5)
        figures[f"starbucks_nir_{key}"] = round(nir, 2)
        figures[f"starbucks_promoted_share_{key}"] = round(float(promote.mean()), 4)
    rows.append(("anchor: the exercise's reference policy", "", f"{ANCHOR_IRR_REFERENCE}",
                 f"{ANCHOR_NIR_REFERENCE}"))  # fmt: skip
    rows.append(("anchor: best public write-up", "", f"{ANCHOR_IRR_BEST}", f"{ANCHOR_NIR_BEST}"))
    figures["starbucks_learner_" + model.learner] = 1
    print(f"  Starbucks: fit_uplift chose {model.learner} ({model.validation})")
    return rows


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_").replace("__", "_")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="seed 42 only")
    parser.add_argument("--only", choices=("hillstrom", "starbucks"), help="one data set, no json")
    args = parser.parse_args()
    seeds = [42] if args.quick else [42, 43, 44, 45, 46]
    figures: dict[str, float] = {}
    started = time.perf_counter()
    if args.only != "starbucks":
        hillstrom_table(seeds, figures)
    if args.only != "hillstrom":
        starbucks_table(figures)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    if args.only is None:
        print(f"\nwrote {services.write_results('uplift', figures)}")


def hillstrom_table(seeds: list[int], figures: dict) -> None:
    rows = hillstrom_bench(seeds, figures)
    services.print_table(
        f"Hillstrom, women's e-mail vs none, visit: test half, seeds {seeds[0]}..{seeds[-1]}",
        [
            ("model", "Qini seed 42", f"Qini mean of {len(seeds)} [95%]", "uplift@30% s42 / mean"),
            *rows,
            ("anchor: sklift notebook", "", "", f"{ANCHOR_AT_30}"),
        ],  # fmt: skip
    )


def starbucks_table(figures: dict) -> None:
    rows = starbucks_bench(figures)
    services.print_table(
        "Starbucks promotion, Training -> Test", [("policy", "promoted", "IRR", "NIR"), *rows]
    )


if __name__ == "__main__":
    main()
