"""Few-shot from past winners (#19, learning what works): which of a workspace's past variants
earned clicks, and the chat messages that show them to the copy writer as examples.

A winner is ranked by the lower end of the 95% Wilson interval of its click rate, not the raw
rate: 1 click in 2 sends (50%) has a lower bound of 9%, 20 in 400 (5%) one of 3.3%, and neither
counts below `MIN_SENDS` sends. Ties go to the most recent.

Each example is shown as the request it answered (its own products, offer and goal) and the copy
that won, so the model sees how copy follows from a brief rather than a second set of products to
mention; the guardrails still check every result, and a winner's product named in new copy fails
them as a product the brief does not contain.
"""

import math
import re
from dataclasses import dataclass, field

from marketing_ai.ml import experiment

MIN_SENDS = 100  # fewer sends say too little about a click rate to call a variant a winner
MAX_EXAMPLES = 3
# Per task, for all its examples together (request and answer). A small model's context is
# short and its prompt is already a few hundred tokens; three bodies fit.
MAX_TOKENS = 360

LABELS = {
    "subject": "a subject line",
    "preheader": "the preheader",
    "body": "the newsletter text",
    "text": "an SMS text message",
}


@dataclass(frozen=True)
class Result:
    """A past variant and what it earned: `sent` messages, `clicks` by people (scanners left
    out), `at` when it was last sent (ISO 8601 UTC, compares as text), `fields` its copy as
    sent, `brief` what it was written for (products, goal, offer)."""

    variant: int
    sent: int
    clicks: int
    at: str
    fields: dict = field(default_factory=dict)
    brief: dict = field(default_factory=dict)

    @property
    def click_bound(self) -> float:
        """Lower end of the 95% Wilson interval of the click rate."""
        return experiment.wilson_interval(self.clicks, self.sent)[0] if self.sent else 0.0


def winners(
    results: list[Result], min_sends: int = MIN_SENDS, limit: int = MAX_EXAMPLES
) -> list[Result]:
    """Those with at least `min_sends` sends and one click, best lower bound first, the most
    recent first among equal bounds; at most `limit`."""
    earned = [r for r in results if r.sent >= min_sends and r.clicks > 0]
    earned.sort(key=lambda r: r.at, reverse=True)
    earned.sort(key=lambda r: round(r.click_bound, 6), reverse=True)  # stable: recency stays
    return earned[:limit]


def example(result: Result, drop: list[str] = ()) -> dict:
    """A winner as `Brief.examples` holds it: its fields without the lines in `drop` (the
    brand's required phrases: the writer appends them, and a model shown them writes them in
    its own words), and `variant`, `products`, `goal`, `offer` for the request it answered."""
    brief = result.brief or {}
    fields = {}
    for name, text in result.fields.items():
        for phrase in drop:
            text = text.replace(phrase, "")
        fields[name] = re.sub(r"\n{3,}", "\n\n", text).strip()
    return {
        **fields,
        "variant": result.variant,
        "products": list(brief.get("products") or []),
        "goal": brief.get("goal") or "",
        "offer": brief.get("offer") or "",
    }


def tokens(text: str) -> int:
    """A cautious estimate of a text's tokens (about four characters of English each in the
    models we ship; words count too, so short words are not undercounted)."""
    return max(math.ceil(len(text) / 3.5), math.ceil(len(text.split()) * 1.4))


def _request(ex: dict, task: str) -> str:
    names = [n.title() if n.isupper() else n for n in ex.get("products") or ["(not recorded)"]]
    lines = ["Products:", *(f"- {name}" for name in names)]  # as the copy writer shows them
    if ex.get("offer"):
        lines.append(f"Offer: {ex['offer']}")
    if ex.get("goal"):
        lines.append(f"Goal: {ex['goal']}")
    # Said in the request, since the model reads it where it writes: these are another brief's.
    lines.append(
        f"Write {LABELS.get(task, task)} for these products only; this copy earned clicks."
    )
    return "\n".join(lines)


def messages(brief, task: str) -> list[dict]:
    """User/assistant pairs, one per example in `brief.examples` that has `task`'s field, taken
    best first within MAX_TOKENS in all, to place before the copy writer's final user message;
    [] when there are none. The best comes last, nearest the request: a small model follows the
    example it read most recently most closely."""
    pairs: list[list[dict]] = []
    budget = MAX_TOKENS
    for ex in list(getattr(brief, "examples", None) or [])[:MAX_EXAMPLES]:
        answer = str(ex.get(task) or "").strip()
        if not answer:
            continue
        request = _request(ex, task)
        cost = tokens(request) + tokens(answer)
        if cost > budget:
            continue  # a shorter one further down may still fit; none is cut mid-sentence
        budget -= cost
        pairs.append(
            [{"role": "user", "content": request}, {"role": "assistant", "content": answer}]
        )
    return [message for pair in reversed(pairs) for message in pair]


def sources(brief) -> list[int]:
    """The variant ids of the examples a brief carries (what conditioned its copy)."""
    return [ex["variant"] for ex in getattr(brief, "examples", None) or [] if "variant" in ex]
