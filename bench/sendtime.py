"""Best send time (issue 17, part 4), simulated: conversions gained by sending each customer at
their estimated best local hour, against a uniformly random hour and against the naive rule
"everyone at the workspace's most common engagement hour", on a synthetic population whose hour
preferences are known.

Population (per replicate, seeded): each customer has a preferred local hour m_i drawn from a
two-peak mixture (mornings around 08:00 and evenings around 20:00, plus 20% anywhere) and a
preference sharpness k_i ~ Uniform(0.5, 3); the probability they convert when sent at hour h is
r_i * g_i(h), with g_i(h) = exp(k_i (cos(2 pi (h - m_i) / 24) - 1)) (1 at their best hour) and
r_i ~ Beta(2, 38) (5% on average at the best hour). Their history: Poisson(lambda_i) past
engagement events (lambda_i ~ Exponential(4): many customers have none or one), each at an hour
drawn from g_i. The policies see only the histories.

Policies, each scored by its expected conversions (the sum of the true probabilities of the
hours it picks; no outcome noise) over a 24-hour window with every hour open:
- oracle: each customer at their true best hour (the ceiling);
- ours: marketing_ai.ml.sendtime.best_hours; confident customers at their best hour, thin ones
  at the campaign's time (10:00) (launches did this at first); and the same with the 10%
  explore share the campaigns use by default;
- ours, the thin at their shrunk best hour (near the workspace's): what launches and journeys'
  delays do;
- raw argmax: each customer's most frequent past hour, no shrinkage (ties and empty histories
  at 10:00): the ablation that shows what shrinking toward the workspace buys;
- naive: everyone at the workspace's most common engagement hour;
- random: a uniformly random hour; campaign time: everyone at 10:00.

The last line is the campaign's own measurement on one simulated send of 20,000 with a 10%
explore share: best-hour against random-hour conversions with Newcombe's 95% interval, as the
results page reports it.

    .venv/bin/python bench/sendtime.py [--customers 20000] [--reps 10]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench import services  # noqa: E402
from marketing_ai.ml import experiment, sendtime  # noqa: E402

HOURS = np.arange(24)
CAMPAIGN_HOUR = 10


def population(n: int, rng: np.random.Generator):
    """(g (n, 24) true relative conversion by hour, r (n,) rate at the best hour, counts (n, 24)
    past engagement by hour)."""
    kind = rng.choice(3, size=n, p=[0.4, 0.4, 0.2])
    mode = np.where(
        kind == 0,
        rng.normal(8, 1.5, n),
        np.where(kind == 1, rng.normal(20, 1.5, n), rng.uniform(0, 24, n)),
    )
    sharp = rng.uniform(0.5, 3.0, n)
    g = np.exp(sharp[:, None] * (np.cos(2 * np.pi * (HOURS[None, :] - mode[:, None]) / 24) - 1))
    r = rng.beta(2, 38, n)
    events = rng.poisson(rng.exponential(4.0, n))
    p = g / g.sum(axis=1, keepdims=True)
    counts = np.zeros((n, 24))
    for i in np.flatnonzero(events):
        counts[i] = rng.multinomial(events[i], p[i])
    return g, r, counts


def expected(g, r, hours) -> float:
    return float(np.sum(r * g[np.arange(len(r)), hours]))


def explored(hours, rng, share: float):
    """`hours` with a `share` of them replaced by a uniformly random hour."""
    out = hours.copy()
    pick = rng.random(len(hours)) < share
    out[pick] = rng.integers(0, 24, pick.sum())
    return out, pick


def replicate(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    g, r, counts = population(n, rng)
    fit = sendtime.best_hours(counts, seed=seed)
    ours = np.where(fit.thin, CAMPAIGN_HOUR, fit.hour)
    workspace_hour = fit.workspace_hour if fit.workspace_hour is not None else CAMPAIGN_HOUR
    raw = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), CAMPAIGN_HOUR)
    with_explore, _ = explored(ours, rng, 0.10)
    return {
        "oracle": expected(g, r, g.argmax(axis=1)),
        "ours (thin at campaign time)": expected(g, r, ours),
        "ours, 10% explored": expected(g, r, with_explore),
        "ours (thin at their shrunk hour)": expected(g, r, fit.hour),
        "raw argmax, no shrinkage": expected(g, r, raw),
        "naive: workspace's top hour": expected(g, r, np.full(n, workspace_hour)),
        "random hour": expected(g, r, rng.integers(0, 24, n)),
        "campaign time (10:00)": expected(g, r, np.full(n, CAMPAIGN_HOUR)),
        "_confident": float((~fit.thin).mean()),
        "_strength": fit.prior_strength,
    }


def measured_campaign(n: int, seed: int) -> dict:
    """One simulated send with the default 10% explore share, among the confident customers:
    conversions drawn, then compared as campaigns.services.send_time compares them."""
    rng = np.random.default_rng(seed + 1000)
    g, r, counts = population(n, rng)
    fit = sendtime.best_hours(counts, seed=seed)
    known = np.flatnonzero(~fit.thin)
    hours, pick = explored(fit.hour[known], rng, 0.10)
    converted = rng.random(len(known)) < r[known] * g[known, hours]
    best, rand = converted[~pick], converted[pick]
    low, high = experiment.difference_interval(best.sum(), len(best), rand.sum(), len(rand))
    return {
        "best": (int(best.sum()), len(best)),
        "random": (int(rand.sum()), len(rand)),
        "difference": best.mean() - rand.mean(),
        "ci95": (low, high),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()
    runs = [replicate(args.customers, seed) for seed in range(args.reps)]
    names = [k for k in runs[0] if not k.startswith("_")]
    random_hour = np.array([run["random hour"] for run in runs])
    naive = np.array([run["naive: workspace's top hour"] for run in runs])
    print(f"{args.customers:,} customers x {args.reps} replicates; expected conversions per run")
    print(f"{'policy':32} {'conversions':>12} {'vs random':>10} {'vs naive':>10}")
    figures: dict[str, float] = {"customers": args.customers, "replicates": args.reps}
    for name in names:
        values = np.array([run[name] for run in runs])
        gain_random = np.mean(values / random_hour - 1) * 100
        gain_naive = np.mean(values / naive - 1) * 100
        print(f"{name:32} {values.mean():12.1f} {gain_random:+9.1f}% {gain_naive:+9.1f}%")
        slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
        figures[f"{slug}_conversions"] = round(float(values.mean()), 1)
        figures[f"{slug}_gain_vs_random_percent"] = round(float(gain_random), 1)
        figures[f"{slug}_gain_vs_naive_percent"] = round(float(gain_naive), 1)
    confident = np.mean([run["_confident"] for run in runs])
    strength = np.mean([run["_strength"] for run in runs])
    print(f"confident (not thin): {confident:.1%}; prior strength (EB): {strength:.1f} events")
    m = measured_campaign(args.customers, 0)
    print(
        f"one measured send: best {m['best'][0]}/{m['best'][1]}, random "
        f"{m['random'][0]}/{m['random'][1]}: difference {m['difference']:+.4f} "
        f"(95% {m['ci95'][0]:+.4f} to {m['ci95'][1]:+.4f})"
    )
    figures.update(
        confident_share=round(float(confident), 4),
        prior_strength_events=round(float(strength), 1),
        measured_send_difference=round(float(m["difference"]), 4),
        measured_send_difference_low=round(float(m["ci95"][0]), 4),
        measured_send_difference_high=round(float(m["ci95"][1]), 4),
        seconds=round(time.perf_counter() - started, 1),
    )
    print(f"{figures['seconds']} s")
    print(f"wrote {services.write_results('sendtime', figures)}")


if __name__ == "__main__":
    main()
