"""The off-topic copy checks (issue #19) on a labelled set: 200 sentences, each with its brief
(an Online Retail II product, a goal, an offer, a send month), half of them about the wrong
product, the wrong season or occasion, or the customer's order (bench/data/copy_sentences.jsonl).

    flock /work/briefs/bench-lock .venv/bin/python bench/copy_checks.py

The support floor is chosen on the "tune" half (10 products) and the checks are reported on the
"test" half (10 other products), each sentence checked as a body through guardrails.check_field.
Reported: precision / recall / F1 of the four checks together (a sentence flagged by any of
unsupported, category, season, order_talk) and per kind of wrong sentence (the check meant for
it), the floor found against the one in faithfulness.SUPPORT_FLOOR, and checks per second with
the sentence embeddings cold, one sentence at a time and batched with Context.prepare.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402
from marketing_ai.ml.language import faithfulness, guardrails  # noqa: E402
from marketing_ai.ml.language.copywriter import Brief, Product  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "copy_sentences.jsonl"
OFF_TOPIC = {"unsupported", "category", "season", "order_talk"}
# The check meant for each kind of wrong sentence.
MEANT = {
    "wrong_product": {"unsupported", "category"},
    "season": {"season"},
    "order_talk": {"order_talk"},
}
RULES = guardrails.BrandRules()
FLOORS = [round(0.05 + 0.01 * i, 2) for i in range(41)]  # 0.05 … 0.45


def load() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def context(row: dict) -> guardrails.Context:
    b = row["brief"]
    brief = Brief(goal=b["goal"], offer=b["offer"], products=[Product(p) for p in b["products"]])
    facts = brief.facts(month=b["month"])
    return guardrails.Context(facts, RULES), facts


def flags(rows: list[dict], floor: float) -> list[set[str]]:
    """The off-topic rules each sentence fails, with the support floor at `floor`."""
    saved = faithfulness.SUPPORT_FLOOR
    faithfulness.SUPPORT_FLOOR = floor
    try:
        out = []
        for row in rows:
            ctx, facts = context(row)
            found = guardrails.check_field("body", row["sentence"], RULES, facts, ctx)
            out.append({f.rule for f in found} & OFF_TOPIC)
        return out
    finally:
        faithfulness.SUPPORT_FLOOR = saved


def scores(predicted: list[bool], actual: list[bool]) -> tuple[float, float, float]:
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    fp = sum(p and not a for p, a in zip(predicted, actual, strict=True))
    fn = sum(a and not p for p, a in zip(predicted, actual, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def evaluate(rows: list[dict], found: list[set[str]]) -> dict:
    actual = [r["off_topic"] for r in rows]
    p, r, f = scores([bool(x) for x in found], actual)
    out = {"precision": p, "recall": r, "f1": f}
    for kind, meant in MEANT.items():
        # The kind's own sentences and the good ones: a flag on a good sentence counts against
        # the check (one on another kind of wrong sentence is no false alarm).
        own = [i for i, row in enumerate(rows) if row["kind"] in (kind, "ok")]
        predicted = [bool(found[i] & meant) for i in own]
        kp, kr, kf = scores(predicted, [rows[i]["kind"] == kind for i in own])
        out |= {f"{kind}_precision": kp, f"{kind}_recall": kr, f"{kind}_f1": kf}
    out["false_alarms"] = sum(bool(x) and not a for x, a in zip(found, actual, strict=True))
    return out


def support_floor(tune: list[dict]) -> tuple[float, float]:
    """The floor with the best F1 of all four checks on the tuning half (the lowest of equals:
    fewer good sentences rejected)."""
    best = max(FLOORS, key=lambda fl: (round(evaluate(tune, flags(tune, fl))["f1"], 6), -fl))
    return best, evaluate(tune, flags(tune, best))["f1"]


def speed(rows: list[dict], batched: bool) -> float:
    """Checks per second from cold embeddings: each brief's sentences checked as bodies."""
    faithfulness._EMBEDDED.clear()
    by_brief: dict[str, list[dict]] = {}
    for row in rows:
        by_brief.setdefault(json.dumps(row["brief"], sort_keys=True), []).append(row)
    started = time.perf_counter()
    for group in by_brief.values():
        ctx, facts = context(group[0])
        if batched:
            ctx.prepare(r["sentence"] for r in group)
        for row in group:
            guardrails.check_field("body", row["sentence"], RULES, facts, ctx)
    return len(rows) / (time.perf_counter() - started)


def main() -> None:
    rows = load()
    tune = [r for r in rows if r["split"] == "tune"]
    test = [r for r in rows if r["split"] == "test"]
    flags(rows[:2], faithfulness.SUPPORT_FLOOR)  # loads the encoder and word lists
    floor, tune_f1 = support_floor(tune)
    figures: dict = {
        "sentences": len(rows),
        "test_sentences": len(test),
        "test_off_topic": sum(r["off_topic"] for r in test),
        "floor_tuned": floor,
        "floor_in_code": faithfulness.SUPPORT_FLOOR,
        "tune_f1": round(tune_f1, 4),
    }
    held_out = evaluate(test, flags(test, faithfulness.SUPPORT_FLOOR))
    figures |= {f"test_{k}": round(v, 4) for k, v in held_out.items()}
    without = evaluate(test, flags(test, 0.0))  # the word and pattern checks alone
    figures |= {f"test_no_support_{k}": round(without[k], 4) for k in ("precision", "recall")}
    figures["checks_per_second_one_by_one"] = round(speed(rows, batched=False), 1)
    figures["checks_per_second_prepared"] = round(speed(rows, batched=True), 1)

    f = figures
    pct = "{:.1%}".format
    rows_out = [
        ("support floor (tuned on 100 sentences)", f["floor_tuned"], f["floor_in_code"],
         "in faithfulness.py"),
        ("held-out: precision, all four checks", pct(f["test_precision"]), "", ""),
        ("held-out: recall, all four checks", pct(f["test_recall"]), "", ""),
        ("held-out: F1", f"{f['test_f1']:.3f}", f"{f['tune_f1']:.3f}", "tuning half"),
        ("held-out: good sentences rejected", f["test_false_alarms"], "of 50", ""),
        ("held-out: without the support check, P / R",
         f"{pct(f['test_no_support_precision'])} / {pct(f['test_no_support_recall'])}", "", ""),
    ]  # fmt: skip
    for kind in MEANT:
        rows_out.append(
            (
                f"held-out {kind}: P / R / F1",
                f"{pct(f[f'test_{kind}_precision'])} / {pct(f[f'test_{kind}_recall'])} / "
                f"{f[f'test_{kind}_f1']:.3f}",
                "",
                "+".join(sorted(MEANT[kind])),
            )
        )
    rows_out += [
        ("checks / s, one sentence at a time (cold)", f["checks_per_second_one_by_one"], "", ""),
        ("checks / s, batched with Context.prepare", f["checks_per_second_prepared"], "", ""),
    ]
    services.print_table(
        f"Off-topic copy checks: {len(test)} held-out sentences ({f['test_off_topic']} wrong)",
        rows_out,
    )
    print(services.write_results("copy_checks", figures))


if __name__ == "__main__":
    main()
