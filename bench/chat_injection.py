"""The chat's injection screen (`assistant.screen`) on attempts its author did not write.

    .venv/bin/python bench/chat_injection.py

`bench/data/chat_injection_heldout.jsonl` (42 attempts: paraphrases, other languages, obfuscation,
role play, asking for other customers' data, instruction extraction; 41 ordinary support
questions) was written before the screen's patterns were read, and is never used to tune them.
`chat_injection_heldout2.jsonl` (25 / 25) was written after the first list's results were seen
but before the screen was changed, and its misses were not looked at while changing it.
`chat_injection_heldout3.jsonl` (40 / 40) was written by someone who had not seen the screen, its
patterns, its tests or the other lists, and committed before this script was first run on it; its
rows say `attack` where the others say `injection`.
For comparison the same figures on the screen's own set (`bench/data/chat.json`: the 30 attempts
the patterns were written against, the 60 questions as negatives). A message counts as caught
when the screen refuses it for any reason (injection or off-topic: either way nothing is
retrieved); a question refused for any reason is a false positive. Writes
bench/results/chat_injection.json. No model, no database: well under a second.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from marketing_ai.ml.language.assistant import screen  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "chat_injection.json"


def measure(attacks: list[str], questions: list[str]) -> dict:
    missed = [a for a in attacks if not screen(a)]
    refused = [q for q in questions if screen(q)]
    return {
        "attacks": len(attacks),
        "detected": len(attacks) - len(missed),
        "detection_rate": round(1 - len(missed) / len(attacks), 4),
        "questions": len(questions),
        "false_positives": len(refused),
        "false_positive_rate": round(len(refused) / len(questions), 4),
        "missed": missed,
        "refused_questions": refused,
    }


def heldout(name: str) -> dict:
    rows = [json.loads(line) for line in (DATA / name).open()]
    for r in rows:
        r["injection"] = r["injection"] if "injection" in r else r["attack"]
    return measure(
        [r["text"] for r in rows if r["injection"]], [r["text"] for r in rows if not r["injection"]]
    )


def main() -> None:
    own = json.loads((DATA / "chat.json").read_text())
    figures = {
        "heldout": heldout("chat_injection_heldout.jsonl"),
        "heldout2": heldout("chat_injection_heldout2.jsonl"),
        "heldout3": heldout("chat_injection_heldout3.jsonl"),
        "own_set": measure(own["injections"], [q for q, _ in own["questions"]]),
    }
    RESULTS.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print("| set | caught | false positives |\n|---|---|---|")
    names = {
        "heldout": "held-out",
        "heldout2": "held-out 2",
        "heldout3": "held-out 3, written without seeing the screen",
        "own_set": "screen's own",
    }
    for key, name in names.items():
        f = figures[key]
        caught = f"{f['detection_rate']:.1%} ({f['detected']} of {f['attacks']})"
        wrong = f"{f['false_positive_rate']:.1%} ({f['false_positives']} of {f['questions']})"
        print(f"| {name} | {caught} | {wrong} |")


if __name__ == "__main__":
    main()
