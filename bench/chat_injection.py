"""The chat's injection screen (`assistant.screen`) on attempts its author did not write.

    .venv/bin/python bench/chat_injection.py

`bench/data/chat_injection_heldout.jsonl` (42 attempts: paraphrases, other languages, obfuscation,
role play, asking for other customers' data, instruction extraction; 41 ordinary support
questions) was written before the screen's patterns were read, and is never used to tune them.
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


def main() -> None:
    rows = [json.loads(line) for line in (DATA / "chat_injection_heldout.jsonl").open()]
    heldout = measure([r["text"] for r in rows if r["injection"]],
                      [r["text"] for r in rows if not r["injection"]])  # fmt: skip
    own = json.loads((DATA / "chat.json").read_text())
    tuning = measure(own["injections"], [q for q, _ in own["questions"]])
    figures = {"heldout": heldout, "own_set": tuning}
    RESULTS.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print("| set | caught | false positives |\n|---|---|---|")
    for name, f in (("held-out", heldout), ("screen's own", tuning)):
        caught = f"{f['detection_rate']:.1%} ({f['detected']} of {f['attacks']})"
        wrong = f"{f['false_positive_rate']:.1%} ({f['false_positives']} of {f['questions']})"
        print(f"| {name} | {caught} | {wrong} |")


if __name__ == "__main__":
    main()
