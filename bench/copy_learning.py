"""Does copy improve with use? A SIMULATION: there are no real recipients here, so a simulated
audience clicks with a probability set by observable properties of the copy, and two arms write
the same campaigns round after round — one plain, one conditioned (few-shot, the product's own
marketing_ai.ml.language.fewshot) on the winners of its own earlier rounds — with the same
briefs, the same seeds and the same audience draws.

    flock /work/briefs/bench-lock .venv/bin/python bench/copy_learning.py
    # BENCH_BRIEFS=2 BENCH_ROUNDS=2 for a quick look

The audience (logistic; the weights are ours, chosen before the run, not learnt from anyone):
    logit P(click) = -4.2
        + 0.9 if the subject names a product of the brief (half its words or more)
        + 0.5 if the subject is 40 characters or fewer
        + 0.5 if the subject asks a question or speaks to the reader ("you", "your")
        + 0.7 if the brief has an offer and the copy states it (its code or its words)
Each sent variant goes to SENDS simulated recipients; a variant the guardrails still fail after
regeneration is not sent (a marketer could not approve it). Winners are picked from each arm's
own history by the product's rule (fewshot.winners: lower Wilson bound of the click rate, at
least MIN_SENDS sends) and given to the next round's briefs as examples.

What it shows: whether the loop (results -> winners -> examples -> the model's next drafts)
carries the properties that earned clicks into new copy for other products, with this model,
and at what cost to the guardrails' pass rate. What it does not show: that real customers click
on these properties, or by how much; real lifts must be measured against a holdout
(campaigns.services.results).
"""

import math
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench import services  # noqa: E402
from bench.copywriting import GOALS, catalogue  # noqa: E402
from marketing_ai.ml import experiment  # noqa: E402
from marketing_ai.ml.language import copywriter, fewshot, guardrails  # noqa: E402

os.environ.setdefault("MARKETING_AI_MODEL_CACHE", str(services.ROOT / "var" / "models"))
BRIEFS = int(os.environ.get("BENCH_BRIEFS", 4))  # per round
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
K = 4
REWRITES = 2  # rounds of the copy writer's own regeneration (bench/copywriting.py runs 6)
SENDS = 400  # simulated recipients per sent variant
OFFERS = [
    "10% off with code GIFT10",
    "",
    "free gift wrapping this week",
    "",
    "code TEA15 for 15% off",
]
RULES = guardrails.BrandRules(
    banned_claims=["guaranteed", "risk-free", "best in the world", "miracle", "cure"],
    required_phrases=["You receive this e-mail because you subscribed to our newsletter."],
)
BASE, WEIGHTS = -4.2, {"names_product": 0.9, "short_subject": 0.5, "speaks_to_reader": 0.5,
                       "states_offer": 0.7}  # fmt: skip


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def features(brief: copywriter.Brief, fields: dict) -> dict[str, bool]:
    subject = fields.get("subject", "")
    said = words(subject)
    names = [[w for w in words(p.name) if len(w) > 2] for p in brief.products]
    everything = " ".join(fields.values())
    offer = False
    if brief.offer:
        codes = [w for w in brief.offer.split() if re.fullmatch(r"[A-Z]+\d+", w)]
        key = [w for w in words(brief.offer) if len(w) > 3]
        offer = any(c in everything for c in codes) or (
            not codes and sum(w in words(everything) for w in key) >= math.ceil(len(key) * 2 / 3)
        )
    return {
        "names_product": any(n and sum(w in said for w in n) * 2 >= len(n) for n in names),
        "short_subject": 0 < len(subject) <= 40,
        "speaks_to_reader": subject.rstrip().endswith("?") or bool(said & {"you", "your"}),
        "states_offer": offer,
    }


def click_probability(brief, fields) -> float:
    logit = BASE + sum(WEIGHTS[name] for name, on in features(brief, fields).items() if on)
    return 1 / (1 + math.exp(-logit))


def round_briefs(products, r: int) -> list[copywriter.Brief]:
    """New campaigns each round (other products), the same in both arms."""
    rng = np.random.default_rng(100 + r)
    top = products.head(500).reset_index()
    out = []
    for i in range(BRIEFS):
        picks = top.iloc[rng.choice(len(top), size=int(rng.integers(1, 3)), replace=False)]
        out.append(
            copywriter.Brief(
                goal=GOALS[(r + i) % len(GOALS)],
                offer=OFFERS[(r + i) % len(OFFERS)],
                tone="warm",
                products=[copywriter.Product(str(p.name).strip()) for p in picks.itertuples()],
            )
        )
    return out


def run_round(model, batch, names, r: int, examples: list[dict], figures, arm):
    """Writes and 'sends' one round with `examples` on every brief; returns the sent variants'
    results."""
    for brief in batch:
        brief.examples = examples
    started = time.perf_counter()
    drafts, stats = copywriter.write_many(
        model, batch, RULES, k=K, rounds=REWRITES, oversample=3, seed=1000 + r, catalogue=names
    )
    seconds = time.perf_counter() - started
    sent = clicks = 0
    expected = []
    seen = {name: 0 for name in WEIGHTS}
    leaked = 0
    results = []
    foreign = [p for ex in examples for p in ex["products"]]
    for b, (brief, row) in enumerate(zip(batch, drafts, strict=True)):
        for i, draft in enumerate(row):
            text = guardrails.normalise(" ".join(draft.fields.values()))
            leaked += any(guardrails.normalise(p) in text for p in foreign)
            if not draft.passed:
                continue
            p = click_probability(brief, draft.fields)
            # Common random numbers: recipient j of this campaign slot draws the same uniform
            # in both arms, so the arms differ only by what the copy makes likely.
            draws = np.random.default_rng([r, b, i]).random(SENDS)
            hits = int((draws < p).sum())
            sent += SENDS
            clicks += hits
            expected.append(p)
            for name, on in features(brief, draft.fields).items():
                seen[name] += on
            results.append(
                fewshot.Result(
                    variant=10_000 * r + 100 * b + i,
                    sent=SENDS,
                    clicks=hits,
                    at=f"round {r:02d}",
                    fields=dict(draft.fields),
                    brief={
                        "products": [p.name for p in brief.products],
                        "goal": brief.goal,
                        "offer": brief.offer,
                    },  # fmt: skip
                )
            )
    variants = len(batch) * K
    low, high = experiment.wilson_interval(clicks, sent)
    key = f"{arm}_r{r}"
    figures[f"{key}_variants_sent"] = len(expected)
    figures[f"{key}_pass_rate"] = round(len(expected) / variants, 4)
    figures[f"{key}_first_try_pass_rate"] = round(stats["first_try_passed"] / variants, 4)
    figures[f"{key}_sends"] = sent
    figures[f"{key}_clicks"] = clicks
    figures[f"{key}_click_rate"] = round(clicks / sent, 5) if sent else 0.0
    figures[f"{key}_click_rate_low"] = round(low, 5)
    figures[f"{key}_click_rate_high"] = round(high, 5)
    figures[f"{key}_expected_click_rate"] = round(float(np.mean(expected)), 5) if expected else 0
    figures[f"{key}_examples"] = len(examples)
    figures[f"{key}_leaked_example_products"] = leaked
    figures[f"{key}_seconds"] = round(seconds, 1)
    for name, n in seen.items():
        figures[f"{key}_{name}"] = round(n / max(len(expected), 1), 4)
    return results


ARMS = {
    "plain": "no examples",
    "fewshot": "few-shot from its own past winners (fewshot.winners)",
    "random": "few-shot from as many of its own past variants drawn at random",
}


def examples_for(arm: str, history: list[fewshot.Result], r: int) -> list[dict]:
    if arm == "plain" or not history:
        return []
    chosen = fewshot.winners(history)
    if arm == "random":
        # The control: examples as such, not their clicks. As many as the winners' arm would
        # get from a history like this one, drawn from everything this arm sent.
        rng = np.random.default_rng(7 + r)
        picks = rng.choice(len(history), size=min(len(chosen), len(history)), replace=False)
        chosen = [history[int(p)] for p in picks]
    return [fewshot.example(w, drop=RULES.required_phrases) for w in chosen]


def summarise(figures: dict, rounds: int) -> None:
    later = range(2, rounds + 1)
    for arm in ARMS:
        s = sum(figures[f"{arm}_r{r}_sends"] for r in later)
        c = sum(figures[f"{arm}_r{r}_clicks"] for r in later)
        low, high = experiment.wilson_interval(c, s)
        figures[f"{arm}_later_sends"], figures[f"{arm}_later_clicks"] = s, c
        figures[f"{arm}_later_click_rate"] = round(c / s, 5) if s else 0.0
        figures[f"{arm}_later_click_rate_low"] = round(low, 5)
        figures[f"{arm}_later_click_rate_high"] = round(high, 5)
        expected = [figures[f"{arm}_r{r}_expected_click_rate"] for r in later]
        figures[f"{arm}_later_expected_click_rate"] = round(float(np.mean(expected)), 5)
    for arm in ("fewshot", "random"):
        low, high = experiment.difference_interval(
            figures[f"{arm}_later_clicks"],
            figures[f"{arm}_later_sends"],
            figures["plain_later_clicks"],
            figures["plain_later_sends"],
        )
        figures[f"{arm}_minus_plain_low"] = round(low, 5)
        figures[f"{arm}_minus_plain_high"] = round(high, 5)


def main() -> None:
    from marketing_ai.ml.language.llm import language_model

    products = catalogue()
    names = products["name"].astype(str).str.strip().tolist()
    model = language_model()
    figures: dict = {"briefs_per_round": BRIEFS, "rounds": 0, "k": K, "sends": SENDS}
    figures["model"] = Path(model.location).name
    history: dict[str, list] = {arm: [] for arm in ARMS}
    started = time.perf_counter()
    for r in range(1, ROUNDS + 1):
        if r == 1:
            # No history in any arm yet: the same briefs and seeds write the same copy, so
            # round 1 is written once and counted for all.
            shared = run_round(model, round_briefs(products, r), names, r, [], figures, "plain")
            for arm in ARMS:
                for name in [k for k in figures if k.startswith("plain_r1_")]:
                    figures[name.replace("plain_", f"{arm}_", 1)] = figures[name]
                history[arm] += shared
            print(f"round 1: {figures['plain_r1_click_rate']:.2%}", flush=True)
            figures["rounds"] = 1
            services.write_results("copy_learning", figures)
            continue
        for arm in ARMS:
            examples = examples_for(arm, history[arm], r)
            history[arm] += run_round(
                model, round_briefs(products, r), names, r, examples, figures, arm
            )
            print(
                f"round {r} {arm}: {figures[f'{arm}_r{r}_click_rate']:.2%} "
                f"({figures[f'{arm}_r{r}_seconds']:.0f} s)",
                flush=True,
            )
        # Written after every round: a run stopped early still leaves what it measured.
        figures["rounds"] = r
        figures["seconds"] = round(time.perf_counter() - started, 1)
        summarise(figures, r)
        services.write_results("copy_learning", figures)
    table(figures)
    print(services.write_results("copy_learning", figures))


def table(figures: dict) -> None:
    rounds = figures["rounds"]
    rows = []
    for r in range(1, rounds + 1):
        for arm in ARMS if r > 1 else ["plain"]:
            k = f"{arm}_r{r}"
            rows.append(
                (
                    f"round {r} {arm if r > 1 else '(all arms)'} "
                    f"({figures[f'{k}_examples']} examples)",
                    f"{figures[f'{k}_click_rate']:.2%} [{figures[f'{k}_click_rate_low']:.2%}, "
                    f"{figures[f'{k}_click_rate_high']:.2%}]",
                    f"expected {figures[f'{k}_expected_click_rate']:.2%}",
                    f"sent {figures[f'{k}_variants_sent']}/{BRIEFS * K}; product in subject "
                    f"{figures[f'{k}_names_product']:.0%}, ≤40 chars "
                    f"{figures[f'{k}_short_subject']:.0%}, you/? "
                    f"{figures[f'{k}_speaks_to_reader']:.0%}, offer "
                    f"{figures[f'{k}_states_offer']:.0%}; leaks "
                    f"{figures[f'{k}_leaked_example_products']}",
                )
            )
    for arm in ARMS:
        rows.append(
            (
                f"rounds 2–{rounds} {arm}",
                f"{figures[f'{arm}_later_click_rate']:.2%} "
                f"[{figures[f'{arm}_later_click_rate_low']:.2%}, "
                f"{figures[f'{arm}_later_click_rate_high']:.2%}]",
                f"expected {figures[f'{arm}_later_expected_click_rate']:.2%}",
                ARMS[arm],
            )
        )
    for arm in ("fewshot", "random"):
        rows.append(
            (
                f"{arm} − plain, rounds 2+",
                f"[{figures[f'{arm}_minus_plain_low']:+.2%}, "
                f"{figures[f'{arm}_minus_plain_high']:+.2%}]",
                "95% (Newcombe)",
                "",
            )
        )
    services.print_table(
        f"Copy learning (SIMULATED audience): {BRIEFS} briefs × {K} variants × {rounds} rounds, "
        f"{figures['model']}",
        rows,
    )


if __name__ == "__main__":
    main()
