"""Bandits and off-policy evaluation (issue 17), measured two ways in one run.

Open Bandit Dataset (OBD; Saito et al. 2020, ZOZOTOWN, November 2019): the small sample shipped
inside the `obp==0.4.1` wheel (10,000 impressions per behaviour policy and campaign), taken with
`pip download --no-deps` and read from the wheel, which is cached under var/datasets/obd/ (never
committed). The wheel is Apache-2.0; neither it nor the sample's README states a separate licence
for the data (the brief's "CC BY 4.0" could not be confirmed in either). The Bernoulli TS
policy's click rate is estimated from the random policy's logs ("all" campaign: 80 items, 3
positions, propensity 1/80) with our IPW / SNIPW / DM / DR and compared with the BTS logs' own
click rate (the on-policy truth). The BTS policy's action distribution is what obp's
`BernoulliTS(is_zozotown_prior=True).compute_batch_action_dist` computes: items ranked by draws
from the production prior (obp's prior_bts.yaml, in the wheel), P(item at position k) by Monte
Carlo; ours is `BetaThompson(prior, floor=0).rank_probabilities` (no floor: the production
policy had none). Relative error |estimate - truth| / truth on bootstrap resamples of the random
logs (resample b drawn as obp's `sample_bootstrap_bandit_feedback(random_state=b)` draws it): mean
and 95% percentile interval. DM and DR use a reward model cross-fitted on 2 folds. `obp` itself
runs on the same resamples, installed with --no-deps into var/bench-obp (not .venv); its
OpenBanditDataset loader fails on pandas 3 (`DataFrame.drop(labels, 1)`), so it is given the same
arrays, preprocessed as that loader does.

Bandit against A/B-then-winner, on Hillstrom (../shared/data/hillstrom): variants whose
response rates are Hillstrom's arms' rates in 18 customer cells (buys men's / women's / both x
newbie x zip-code type): the three arms (men's e-mail, women's e-mail, no e-mail) as three
variants, and the two e-mails alone (closer, and each the better one for some cells). Each of
100 simulated campaigns draws its cells' true rates from their Beta posteriors (the data's own
uncertainty, so campaigns differ), 10,000 recipients from the 64,000 customers, and every
recipient's response to every variant in advance (the same draws for every policy). Policies:
A/B then winner (a test share split evenly, then the best observed rate to the rest: today's
A/B mode); Thompson sampling in waves (each wave's shares are P(variant is best) given the waves
before; also without the 1% floor, to show what keeping every log evaluable costs); linear
Thompson sampling on the customer's features, in waves, per customer. Expected responses (the
true rate of the variant each recipient got) and regret against the per-customer best variant,
for visits and for conversions.

    flock /work/briefs/bench-lock .venv/bin/python bench/bandit.py [--boot 20] [--campaigns 100]
"""

import argparse
import importlib
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from bench import services  # noqa: E402
from marketing_ai.ml.bandit import ope  # noqa: E402
from marketing_ai.ml.bandit.policies import BetaThompson, LinearThompson, sample_rows  # noqa: E402

warnings.filterwarnings("ignore")
DATA = services.ROOT.parent / "shared" / "data"
OBP = "obp==0.4.1"
OBD_CACHE = services.ROOT / "var" / "datasets" / "obd"
OBP_TARGET = services.ROOT / "var" / "bench-obp"
CAMPAIGN = "all"
POSITIONS = 3
MC_DRAWS = 100_000  # as obp's examples' n_sim
# Open Bandit Pipeline's published relative errors on this sample (its examples).
PUBLISHED = {"dm": 0.18, "ipw": 0.33, "dr": 0.30}
ESTIMATORS = ("ipw", "snipw", "dm", "dr")


# --- Open Bandit Dataset ---------------------------------------------------------------------


def obp_wheel() -> Path:
    """The obp wheel, downloaded once into var/datasets/obd/ (its data are read from the zip)."""
    found = sorted(OBD_CACHE.glob("obp-0.4.1-*.whl"))
    if found:
        return found[0]
    OBD_CACHE.mkdir(parents=True, exist_ok=True)
    print(f"downloading the {OBP} wheel from PyPI for its Open Bandit Dataset sample (1.3 MB)")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", OBD_CACHE, OBP],
        check=True,
    )
    return next(OBD_CACHE.glob("obp-0.4.1-*.whl"))


def obd_logs(wheel: Path, policy: str) -> dict:
    """One behaviour policy's logs, as obp's OpenBanditDataset preprocesses them: sorted by time,
    positions 0..2, the user features one-hot (first level dropped), item features label-coded."""
    folder = f"obp/dataset/obd/{policy}/{CAMPAIGN}"
    with zipfile.ZipFile(wheel) as z:
        frame = pd.read_csv(z.open(f"{folder}/{CAMPAIGN}.csv"), index_col=0)
        items = pd.read_csv(z.open(f"{folder}/item_context.csv"), index_col=0)
    frame = frame.sort_values("timestamp")
    users = frame.loc[:, frame.columns.str.contains("user_feature")]
    coded = items.drop(columns=["item_feature_0"]).apply(lambda c: pd.factorize(c, sort=True)[0])
    return {
        "n_rounds": len(frame),
        "n_actions": len(items),
        "action": frame["item_id"].to_numpy(),
        "position": frame["position"].to_numpy() - 1,
        "reward": frame["click"].to_numpy().astype(float),
        "pscore": frame["propensity_score"].to_numpy(),
        "context": pd.get_dummies(users, drop_first=True, dtype=float).to_numpy(),
        "action_context": np.column_stack([coded.to_numpy(), items["item_feature_0"].to_numpy()]),
    }


def bts_prior(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """The production BTS policy's Beta prior (obp/policy/conf/prior_bts.yaml in the wheel)."""
    with zipfile.ZipFile(wheel) as z:
        prior = yaml.safe_load(z.open("obp/policy/conf/prior_bts.yaml"))[CAMPAIGN]
    return np.asarray(prior["alpha"], dtype=float), np.asarray(prior["beta"], dtype=float)


def bootstrap(logs: dict, b: int) -> dict:
    """Resample b as obp draws it (RandomState(b).choice with replacement)."""
    idx = np.random.RandomState(b).choice(np.arange(logs["n_rounds"]), logs["n_rounds"])
    out = dict(logs)
    for key in ("action", "position", "reward", "pscore", "context"):
        out[key] = logs[key][idx]
    return out


def ours(logs: dict, dist: np.ndarray, b: int) -> dict[str, float]:
    """Our four estimates; dist (K, positions) the candidate's P(item at position)."""
    rows = np.arange(logs["n_rounds"])
    target = dist[:, logs["position"]].T  # (n, K): the candidate at each row's position
    logged = target[rows, logs["action"]]
    X = np.column_stack([logs["context"], np.eye(POSITIONS)[logs["position"]]])
    y, a, p = logs["reward"], logs["action"], logs["pscore"]
    values = {
        "ipw": ope.ipw(y, p, logged).value,
        "snipw": ope.snipw(y, p, logged).value,
    }
    # 80 items x 29 features is too many per-item slopes for ~40 clicks: no interactions.
    for model, tag in (("logistic", ""), ("lightgbm", "_lgbm")):
        q = ope.reward_model(
            X, a, y, logs["n_actions"], folds=2, seed=b, model=model, interactions=False
        )
        values[f"dm{tag}"] = ope.dm(q, target).value
        values[f"dr{tag}"] = ope.dr(y, a, p, target, q).value
    return values


def obp_import():
    """obp from var/bench-obp (installed there with --no-deps from the cached wheel), or the
    reason it cannot run."""
    if str(OBP_TARGET) not in sys.path:
        sys.path.append(str(OBP_TARGET))
    try:
        import obp  # noqa: F401
    except ImportError:
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target"]
                + [OBP_TARGET, obp_wheel()],
                check=True,
            )
            importlib.invalidate_caches()  # the folder did not exist at the first attempt
            sys.path_importer_cache.pop(str(OBP_TARGET), None)
            import obp  # noqa: F401
        except Exception as exc:  # noqa: BLE001 (any failure is reported, not raised)
            return None, f"obp did not install or import: {exc!r}"
    except Exception as exc:  # noqa: BLE001
        return None, f"obp did not import: {exc!r}"
    return obp, ""


def obp_action_dist(K: int) -> np.ndarray:
    from obp.policy import BernoulliTS

    policy = BernoulliTS(
        n_actions=K,
        len_list=POSITIONS,
        is_zozotown_prior=True,
        campaign=CAMPAIGN,
        random_state=12345,
    )
    return policy.compute_batch_action_dist(n_sim=MC_DRAWS, n_rounds=1)[0]  # (K, positions)


def obp_estimates(logs: dict, dist: np.ndarray, b: int) -> dict[str, float]:
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        RegressionModel,
        SelfNormalizedInverseProbabilityWeighting,
    )
    from sklearn.linear_model import LogisticRegression

    n = logs["n_rounds"]
    action_dist = np.broadcast_to(dist, (n, *dist.shape)).copy()
    model = RegressionModel(
        n_actions=logs["n_actions"],
        len_list=POSITIONS,
        action_context=logs["action_context"],
        base_model=LogisticRegression(C=100, max_iter=10_000, random_state=12345),
    )
    q = model.fit_predict(
        context=logs["context"],
        action=logs["action"],
        reward=logs["reward"],
        position=logs["position"],
        n_folds=2,
        random_state=b,
    )
    evaluation = OffPolicyEvaluation(
        bandit_feedback=logs,
        ope_estimators=[
            InverseProbabilityWeighting(),
            SelfNormalizedInverseProbabilityWeighting(),
            DirectMethod(),
            DoublyRobust(),
        ],
    )
    values = evaluation.estimate_policy_values(
        action_dist=action_dist, estimated_rewards_by_reg_model=q
    )
    return {name: float(values[name]) for name in ESTIMATORS}


def _summary(errors: list[float]) -> tuple[float, float, float]:
    e = np.asarray(errors)
    return float(e.mean()), float(np.percentile(e, 2.5)), float(np.percentile(e, 97.5))


def obd_bench(n_boot: int, figures: dict) -> list[tuple]:
    wheel = obp_wheel()
    random_logs, bts_logs = obd_logs(wheel, "random"), obd_logs(wheel, "bts")
    K = random_logs["n_actions"]
    truth = float(bts_logs["reward"].mean())
    alpha, beta = bts_prior(wheel)
    started = time.perf_counter()
    dist = BetaThompson(prior_a=alpha, prior_b=beta, floor=0.0).rank_probabilities(
        np.zeros(K), np.zeros(K), positions=POSITIONS, draws=MC_DRAWS, seed=12345
    )
    figures["obd_action_dist_seconds"] = round(time.perf_counter() - started, 2)
    obp, why_not = obp_import()
    theirs_dist = None
    if obp is not None:
        started = time.perf_counter()
        theirs_dist = obp_action_dist(K)
        figures["obd_obp_action_dist_seconds"] = round(time.perf_counter() - started, 2)
        figures["obd_action_dist_max_gap_to_obp"] = round(
            float(np.abs(dist - theirs_dist).max()), 5
        )
    errors: dict[str, list[float]] = {}
    naive = []
    seconds = {"ours": 0.0, "obp": 0.0}
    for b in range(n_boot):
        logs = bootstrap(random_logs, b)
        naive.append(abs(logs["reward"].mean() - truth) / truth)
        started = time.perf_counter()
        for name, value in ours(logs, dist, b).items():
            errors.setdefault(f"ours_{name}", []).append(abs(value - truth) / truth)
        seconds["ours"] += time.perf_counter() - started
        if obp is not None:
            started = time.perf_counter()
            for name, value in obp_estimates(logs, theirs_dist, b).items():
                errors.setdefault(f"obp_{name}", []).append(abs(value - truth) / truth)
            seconds["obp"] += time.perf_counter() - started
    figures.update(
        {
            "obd_truth_bts_ctr": round(truth, 6),
            "obd_random_ctr": round(float(random_logs["reward"].mean()), 6),
            "obd_bootstrap_samples": n_boot,
            "obd_ours_seconds_per_sample": round(seconds["ours"] / n_boot, 2),
        }
    )
    if obp is not None:
        figures["obd_obp_seconds_per_sample"] = round(seconds["obp"] / n_boot, 2)
    for name, values in errors.items():
        mean, low, high = _summary(values)
        figures[f"obd_{name}_relative_error"] = round(mean, 4)
        figures[f"obd_{name}_relative_error_low"] = round(low, 4)
        figures[f"obd_{name}_relative_error_high"] = round(high, 4)
    naive_mean, naive_low, naive_high = _summary(naive)
    figures["obd_naive_relative_error"] = round(naive_mean, 4)

    def cell(key: str) -> str:
        if key not in errors:
            return "-"
        mean, low, high = _summary(errors[key])
        return f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    rows = [
        (
            "truth: BTS logs' click rate (10,000 impressions)",
            f"{truth:.5f}",
            f"random logs' own {random_logs['reward'].mean():.5f}",
            "-",
        ),
        (
            "BTS P(item at position): ours vs obp's compute_batch_action_dist",
            f"largest gap {figures.get('obd_action_dist_max_gap_to_obp', float('nan')):.4f}",
            "obp same run" if obp is not None else why_not,
            f"{MC_DRAWS:,} draws each",
        ),
    ]
    labels = {
        "ipw": "IPW",
        "snipw": "SNIPW",
        "dm": "DM (logistic reward model)",
        "dr": "DR (logistic reward model)",
        "dm_lgbm": "DM (LightGBM reward model)",
        "dr_lgbm": "DR (LightGBM reward model)",
    }
    for name, label in labels.items():
        anchor = PUBLISHED.get(name)
        rows.append(
            (
                f"relative error, {label}, mean [95%] of {n_boot} resamples",
                cell(f"ours_{name}"),
                f"obp same run {cell(f'obp_{name}')}" if f"obp_{name}" in errors else "-",
                f"published {anchor}" if anchor else "-",
            )
        )
    ours_best = min(
        (figures[f"obd_ours_{n}_relative_error"], n) for n in labels if f"ours_{n}" in errors
    )
    figures["obd_ours_best_relative_error"] = ours_best[0]
    rows.append(
        (
            "best of ours",
            f"{ours_best[1]} {ours_best[0]:.3f}",
            f"best published {min(PUBLISHED.values())}",
            "met" if ours_best[0] <= min(PUBLISHED.values()) else "NOT met",
        )
    )
    rows.append(
        (
            "naive: the random logs' own click rate as the estimate",
            f"{naive_mean:.3f} [{naive_low:.3f}, {naive_high:.3f}]",
            "-",
            "what DM earns by learning nothing",
        )
    )
    if obp is None:
        rows.append(("obp itself", "not run", why_not, "-"))
    return rows


# --- Hillstrom: bandit against A/B then winner -----------------------------------------------

ARMS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
RECIPIENTS = 10_000


def hillstrom_world() -> dict:
    with zipfile.ZipFile(DATA / "hillstrom" / "hillstrom.csv.zip") as z:
        frame = pd.read_csv(z.open("hillstrom.csv"))
    buys = frame["mens"] + 2 * frame["womens"] - 1  # 0 men's only, 1 women's only, 2 both
    zips = pd.factorize(frame["zip_code"], sort=True)[0]
    cell = (buys * 2 + frame["newbie"]) * 3 + zips  # 18 cells
    arm = frame["segment"].map({name: k for k, name in enumerate(ARMS)}).to_numpy()
    n_cells = 18
    world = {"cell": cell.to_numpy(), "n_cells": n_cells}
    for outcome in ("visit", "conversion"):
        n = np.zeros((n_cells, len(ARMS)))
        hits = np.zeros((n_cells, len(ARMS)))
        np.add.at(n, (world["cell"], arm), 1)
        np.add.at(hits, (world["cell"], arm), frame[outcome].to_numpy())
        world[outcome] = (hits, n)
    channel = pd.get_dummies(frame["channel"], drop_first=True, dtype=float)
    zip_dummies = pd.get_dummies(frame["zip_code"], drop_first=True, dtype=float)
    world["features"] = np.column_stack(
        [frame[["mens", "womens", "newbie"]].to_numpy(float), zip_dummies, channel]
    )
    return world


def ab_then_winner(rates, responses, share: float, rng) -> np.ndarray:
    """The A/B mode: an even split of the first `share`, then the best observed rate to the rest
    (ties to the first variant, as the platform breaks them by name)."""
    n, k = rates.shape
    test = int(round(share * n))
    arms = np.empty(n, dtype=int)
    arms[:test] = rng.permutation(np.arange(test) % k)
    hits = np.bincount(arms[:test], weights=responses[np.arange(test), arms[:test]], minlength=k)
    sent = np.bincount(arms[:test], minlength=k)
    arms[test:] = int(np.argmax(hits / np.maximum(sent, 1)))
    return arms


def thompson_waves(rates, responses, waves: int, rng, floor: float = 0.01) -> np.ndarray:
    n, k = rates.shape
    ts = BetaThompson(floor=floor)
    arms = np.empty(n, dtype=int)
    successes, trials = np.zeros(k), np.zeros(k)
    for wave in np.array_split(np.arange(n), waves):
        p = ts.probabilities(successes, trials, draws=20_000, seed=rng)
        arms[wave], _ = sample_rows(np.tile(p, (len(wave), 1)), rng)
        trials += np.bincount(arms[wave], minlength=k)
        successes += np.bincount(arms[wave], weights=responses[wave, arms[wave]], minlength=k)
    return arms


def linear_waves(X, rates, responses, waves: int, rng) -> np.ndarray:
    n, k = rates.shape
    arms = np.empty(n, dtype=int)
    done = np.zeros(n, dtype=bool)
    for number, wave in enumerate(np.array_split(np.arange(n), waves)):
        if number == 0:  # nothing logged yet: the uniform policy
            arms[wave] = rng.integers(0, k, len(wave))
        else:
            rows = np.flatnonzero(done)
            policy = LinearThompson(l2=1.0, scale=1.0).fit(
                X[rows], arms[rows], responses[rows, arms[rows]], n_arms=k
            )
            arms[wave], _ = policy.choose(X[wave], rng)
        done[wave] = True
    return arms


POLICIES = {
    "ab20": "A/B then winner, 20% test",
    "ab10": "A/B then winner, 10% test",
    "ts4": "Thompson sampling, 4 waves",
    "ts10": "Thompson sampling, 10 waves",
    "ts10_nofloor": "Thompson sampling, 10 waves, no 1% floor",
    "lin4": "linear Thompson sampling, 4 waves",
    "lin10": "linear Thompson sampling, 10 waves",
}
# The three Hillstrom arms as variants, and its two e-mails alone (closer, and each one best for
# some cells: the case a contextual policy is for).
VARIANT_SETS = {"3 variants": (0, 1, 2), "2 e-mails": (0, 1)}


def simulate(world: dict, outcome: str, variants: tuple, campaign: int) -> dict:
    """One campaign: {policy: (expected responses, regret against the per-customer best)}."""
    rng = np.random.default_rng(
        [campaign, outcome == "conversion", len(variants)]  # a stream per world and campaign
    )
    hits, n = world[outcome]
    hits, n = hits[:, list(variants)], n[:, list(variants)]
    cell_rates = rng.beta(1 + hits, 1 + n - hits)  # this campaign's true rates
    who = rng.choice(len(world["cell"]), RECIPIENTS, replace=False)
    rates = cell_rates[world["cell"][who]]  # (recipients, K)
    responses = (rng.random(rates.shape) < rates).astype(float)
    X = world["features"][who]
    rows = np.arange(RECIPIENTS)
    best = rates.max(axis=1).sum()
    choices = {
        "ab20": ab_then_winner(rates, responses, 0.2, rng),
        "ab10": ab_then_winner(rates, responses, 0.1, rng),
        "ts4": thompson_waves(rates, responses, 4, rng),
        "ts10": thompson_waves(rates, responses, 10, rng),
        "ts10_nofloor": thompson_waves(rates, responses, 10, rng, floor=0.0),
        "lin4": linear_waves(X, rates, responses, 4, rng),
        "lin10": linear_waves(X, rates, responses, 10, rng),
    }
    out = {}
    for name, arms in choices.items():
        got = rates[rows, arms].sum()
        out[name] = (got, best - got)
    single = rates.sum(axis=0).max()
    out["oracle_arm"] = (single, best - single)
    out["uniform"] = (rates.mean(axis=1).sum(), best - rates.mean(axis=1).sum())
    out["oracle"] = (best, 0.0)
    return out


def hillstrom_bench(campaigns: int, figures: dict) -> list[tuple]:
    world = hillstrom_world()
    rows = []
    for label_set, variants in VARIANT_SETS.items():
        for outcome in ("visit", "conversion"):
            prefix = f"hillstrom_{len(variants)}arms_{outcome}"
            started = time.perf_counter()
            runs = [simulate(world, outcome, variants, c) for c in range(campaigns)]
            figures[f"{prefix}_seconds"] = round(time.perf_counter() - started, 1)
            rows.extend(_campaign_rows(f"{label_set}, {outcome}", prefix, runs, figures))
    return rows


def _campaign_rows(title: str, prefix: str, runs: list[dict], figures: dict) -> list[tuple]:
    gained = {name: np.array([r[name][0] for r in runs]) for name in runs[0]}
    regret = {name: np.array([r[name][1] for r in runs]) for name in runs[0]}
    for name in runs[0]:
        figures[f"{prefix}_{name}_responses"] = round(float(gained[name].mean()), 2)
        figures[f"{prefix}_{name}_regret"] = round(float(regret[name].mean()), 2)
        figures[f"{prefix}_{name}_regret_p95"] = round(float(np.percentile(regret[name], 95)), 2)
    rows = [
        (
            f"{title}: per-customer best (oracle) / best single variant / even split",
            f"{gained['oracle'].mean():,.1f} / {gained['oracle_arm'].mean():,.1f} / "
            f"{gained['uniform'].mean():,.1f}",
            f"responses per campaign of {RECIPIENTS:,}",
            "-",
        )
    ]
    base = gained["ab20"]
    for name, label in POLICIES.items():
        diff = gained[name] - base
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        if name != "ab20":
            figures[f"{prefix}_{name}_gain_vs_ab20"] = round(float(diff.mean()), 2)
            figures[f"{prefix}_{name}_gain_vs_ab20_half_width"] = round(float(half), 2)
            figures[f"{prefix}_{name}_ahead_of_ab20_share"] = round(float((diff > 0).mean()), 3)
        rows.append(
            (
                f"{title}: {label}",
                f"{gained[name].mean():,.1f}, regret {regret[name].mean():,.1f} "
                f"(worst 5%: {np.percentile(regret[name], 95):,.0f})",
                "today's A/B mode"
                if name == "ab20"
                else f"vs A/B 20%: {diff.mean():+.1f} ± {half:.1f}",
                "-" if name == "ab20" else f"ahead in {(diff > 0).mean():.0%} of campaigns",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boot", type=int, default=20, help="OBD bootstrap resamples")
    parser.add_argument("--campaigns", type=int, default=100, help="simulated campaigns")
    args = parser.parse_args()
    figures: dict = {}
    started = time.perf_counter()
    obd_rows = obd_bench(args.boot, figures)
    services.print_table(
        "Open Bandit Dataset (small sample, 'all'): Bernoulli TS's click rate from the random "
        "policy's logs",
        obd_rows,
    )
    sim_rows = hillstrom_bench(args.campaigns, figures)
    services.print_table(
        f"Hillstrom: {args.campaigns} simulated campaigns of {RECIPIENTS:,} recipients; "
        "expected responses per campaign (mean)",
        sim_rows,
    )
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nwrote {services.write_results('bandit', figures)} ({figures['seconds']} s)")


if __name__ == "__main__":
    main()
