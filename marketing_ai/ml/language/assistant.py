"""The customer-service assistant: one turn = screen the message, find its intent, answer.

- Screening (screening.py) refuses prompt injection (asking for the instructions, for other
  people's data, or to act as something else) and off-topic work (essays, code) before
  anything is retrieved.
- Order questions are answered from the orders the caller passes in — the identified customer's
  own, and nothing else ever reaches this module — with the order's facts, not generated text.
- Other questions are answered from the knowledge base: hybrid retrieval, then the language
  model writes an answer from the best passages; an answer that brings numbers or names the
  passages do not contain is replaced by the passage's most relevant sentences. Every knowledge
  answer cites its articles.
- Returns, unsubscribe and "talk to a person" have fixed routes (the latter hands over to staff).
"""

import re
from dataclasses import dataclass, field

import numpy as np

from marketing_ai.ml.language import guardrails, screening
from marketing_ai.ml.language.retrieval import Index

INTENTS = ("order_status", "returns", "product", "unsubscribe", "human", "question")

# Phrasings per intent; a message is matched by keywords first, then by embedding similarity.
EXAMPLES = {
    "order_status": ["where is my order", "has my order shipped", "when will my parcel arrive",
                     "track my delivery", "status of order", "my order has not arrived"],
    "returns": ["I want to return an item", "how do I send something back", "refund for my order",
                "return policy", "exchange a product"],
    "product": ["do you sell teapots", "is this candle holder in stock", "what is the size of",
                "what material is the lantern made of", "tell me about your cake stands"],
    "unsubscribe": ["stop sending me emails", "unsubscribe me", "remove me from your list",
                    "I don't want marketing messages"],
    "human": ["talk to a person", "speak to a human", "can I talk to someone",
              "connect me to an agent", "I want a real person"],
}  # fmt: skip
KEYWORDS = {
    "human": r"\b(human|real person|an? (?:agent|person|operator)|speak to (?:someone|staff)|"
    r"talk to (?:someone|a person|staff))\b",
    "unsubscribe": r"\b(unsubscribe|opt[ -]?out|stop (?:sending|emailing)|remove me)\b",
    "order_status": r"\b(where(?:'s| is) my (?:order|parcel|package)|track(?:ing)?|"
    r"order (?:status|number|#?\d+)|#\d{3,}|has my order|not arrived|delivered yet)\b",
}

REFUSALS = {
    "injection": "I can't help with that. I can answer questions about our products, your own "
    "orders, deliveries and returns.",
    "off_topic": "I can only help with questions about our shop: products, your orders, "
    "deliveries and returns.",
}


@dataclass
class Order:
    number: str
    placed_at: str  # ISO date
    status: str
    total: str
    lines: list[str] = field(default_factory=list)  # "2 × Regency teacup"


@dataclass
class Reply:
    text: str
    intent: str
    citations: list[int] = field(default_factory=list)  # article ids
    refused: str = ""  # "injection" / "off_topic" / ""
    handoff: bool = False
    source: str = ""  # "model", "extract", "orders", "fixed"


def screen(message: str) -> str:
    """'injection', 'off_topic' or '' for a message (see screening)."""
    return screening.screen(message)


class Assistant:
    def __init__(self, index: Index, encoder, model=None, min_similarity: float = 0.25) -> None:
        self.index, self.encoder, self.model = index, encoder, model
        self.min_similarity = min_similarity
        names = [n for n in EXAMPLES for _ in EXAMPLES[n]]
        self._example_intents = np.array(names)
        self._examples = encoder.encode([e for n in EXAMPLES for e in EXAMPLES[n]])

    def intent(self, message: str) -> str:
        text = message.lower()
        for name, pattern in KEYWORDS.items():
            if re.search(pattern, text):
                return name
        similarity = self._examples @ self.encoder.encode([message])[0]
        best = int(np.argmax(similarity))
        return str(self._example_intents[best]) if similarity[best] >= 0.55 else "question"

    def reply(
        self, message: str, orders: list[Order] | None = None, identified: bool = False
    ) -> Reply:
        """`orders` are the identified customer's own orders (None when nobody is identified)."""
        refused = screen(message)
        if refused:
            return Reply(REFUSALS[refused], "refused", refused=refused, source="fixed")
        intent = self.intent(message)
        if intent == "human":
            text = "I've asked a member of our team to join this conversation; they'll reply here."
            return Reply(text, intent, handoff=True, source="fixed")
        if intent == "order_status":
            reply = self._order_status(message, orders if identified else None)
            return self._with_articles(message, reply)  # e.g. the article on tracking
        if intent == "unsubscribe":
            text = (
                "You can stop our e-mails with the unsubscribe link at the foot of any e-mail "
                "from us, or from your preferences page; it takes effect at once."
            )
            return self._with_articles(message, Reply(text, intent, source="fixed"))
        return self._from_knowledge(message, intent)

    def _order_status(self, message: str, orders: list[Order] | None) -> Reply:
        if orders is None:
            text = (
                "I can look up orders once I know who you are: please open this chat from the "
                "link in one of our e-mails or from your account."
            )
            return Reply(text, "order_status", source="fixed")
        if not orders:
            return Reply(
                "I can't find any orders on your account.", "order_status", source="orders"
            )
        asked = re.findall(r"\d{3,}", message)
        if asked:
            found = [o for o in orders if any(a in o.number for a in asked)]
            if not found:
                text = (
                    f"I can't find an order numbered {asked[0]} on your account. Your most "
                    f"recent order is {orders[0].number}."
                )
                return Reply(text, "order_status", source="orders")
            order = found[0]
        else:
            order = orders[0]
        text = (
            f"Your order {order.number}, placed on {order.placed_at}, has status: {order.status}."
        )
        if order.lines:
            text += " It contains " + "; ".join(order.lines[:5]) + "."
        text += f" Total: {order.total}."
        return Reply(text, "order_status", source="orders")

    def _with_articles(self, message: str, reply: Reply) -> Reply:
        hits = self.index.search(message, k=1)
        if hits and hits[0].similarity >= self.min_similarity:
            reply.citations = [hits[0].passage.article]
        return reply

    def _from_knowledge(self, message: str, intent: str) -> Reply:
        hits = self.index.search(message, k=3)
        if not hits or hits[0].similarity < self.min_similarity:
            text = (
                "I don't have an answer to that in our help articles. Would you like me to "
                "pass your question to a member of our team?"
            )
            return Reply(text, intent, source="fixed")
        top = hits[0].passage
        cited = [top.article] + [
            h.passage.article
            for h in hits[1:]
            if h.passage.article != top.article and h.similarity >= hits[0].similarity - 0.05
        ][:1]
        context = "\n\n".join(h.passage.as_text() for h in hits if h.passage.article in cited)
        text, source = "", "extract"
        if self.model is not None:
            text = self._generate(message, context)
            if text:
                source = "model"
        if not text:
            text = self._extract(message, [h.passage for h in hits if h.passage.article in cited])
        return Reply(text, intent, citations=cited, source=source)

    def _generate(self, message: str, context: str) -> str:
        conversation = [
            {
                "role": "system",
                "content": "You answer customers' questions for a shop, using only "
                "the help text given. Answer in one or two sentences.",
            },
            {"role": "user", "content": f"Help text:\n{context}\n\nQuestion: {message}"},
        ]
        out = self.model.generate([conversation], max_new_tokens=70, temperature=0.0)[0].text
        out = " ".join(re.split(r"(?<=[.!?])\s+", out.strip())[:2]).strip()
        if len(out) < 15 or out[-1:] not in ".!?":
            return ""
        # Grounded or not at all: anything factual the help text lacks sends us to extraction.
        facts = guardrails.Facts(context + "\n" + message)
        rules = guardrails.BrandRules(language="", min_length={}, max_length={})
        report = guardrails.check({"text": out}, rules, facts)
        grounded = not any(
            f.rule in guardrails.INVENTED or f.rule == "personal_data" for f in report.failures
        )
        return out if grounded else ""

    def _extract(self, message: str, found: list) -> str:
        """The two sentences of the found passages closest to the question, in their order."""
        sentences = [
            s.strip()
            for p in found
            for s in re.split(r"(?<=[.!?])\s+", p.text)
            if len(s.strip()) > 20
        ]
        if not sentences:
            return found[0].text
        similarity = self.encoder.encode(sentences) @ self.encoder.encode([message])[0]
        keep = sorted(np.argsort(-similarity)[:2])
        return " ".join(re.sub(r"[*_`#>]", "", sentences[i]) for i in keep)
