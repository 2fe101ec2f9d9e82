"""The customer-service assistant: one turn = screen the message, find its intent, answer.

- Screening (screening.py) refuses prompt injection (asking for the instructions, for other
  people's data, or to act as something else) and off-topic work (essays, code) before
  anything is retrieved.
- Order questions are answered from the orders the caller passes in — the identified customer's
  own, and nothing else ever reaches this module — with the order's facts, not generated text:
  by number, date or period, product, or state (orders.py).
- Product questions ("how much is the cake stand?") are answered from the catalogue the caller
  passes in (the workspace's own products: name, price, description, whether it is still sold),
  with a help article cited when one is close; a question no product matches is answered from
  the help articles only where one is clearly about it (given passages merely near the question,
  the model described products we do not sell), else told that nothing matches.
- Other questions are answered from the knowledge base: hybrid retrieval, then the language
  model writes an answer from the best passages; an answer that brings numbers or names the
  passages do not contain is replaced by the passage's most relevant sentences. Every knowledge
  answer cites its articles. The model's answer can be followed as it is written (`on_text`);
  what was shown is provisional until the reply returns, which may replace it with extracted
  sentences when a finished sentence fails the check. A model answer that says "not" where the
  passage it rests on does not is replaced too (the model turned "we accept PayPal" into "PayPal
  is not accepted"), and a model server that is down (ModelUnavailable) leaves the extract.
- Returns, unsubscribe and "talk to a person" have fixed routes (the latter hands over to staff).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from marketing_ai.ml.language import guardrails, screening
from marketing_ai.ml.language import orders as order_questions
from marketing_ai.ml.language import products as catalogue_words
from marketing_ai.ml.language.orders import Line, Order
from marketing_ai.ml.language.packaged import ModelUnavailable
from marketing_ai.ml.language.products import Catalogue, Product
from marketing_ai.ml.language.retrieval import Index

__all__ = ["Assistant", "Catalogue", "Line", "Order", "Product", "Reply", "screen"]

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
    # How delivery works in general is the help articles' ("how long does delivery take?" read
    # as an order question by its closeness to "when will my parcel arrive"); about their own
    # order ("my order", a number) it is not.
    "question": r"^(?!.*\b(?:my|our) (?:order|parcel|package|delivery|purchase)s?\b)(?!.*\d{3})"
    r".*\b(?:how (?:long|much|soon|fast|quickly) (?:does|do|is|will|would|are|can)(?: the| a| it)? "
    r"(?:\w+ )?(?:delivery|deliveries|shipping|postage|dispatch|take to (?:deliver|arrive|ship))|"
    r"(?:delivery|shipping|dispatch) (?:times?|costs?|charges?|options|policy|fees?|take)|"
    r"do you (?:deliver|ship|post) (?:to|abroad|internationally|overseas|outside))\b",
    "human": r"\b(human|real person|an? (?:agent|person|operator)|speak to (?:someone|staff)|"
    r"talk to (?:someone|a person|staff))\b",
    "unsubscribe": r"\b(unsubscribe|opt[ -]?out|stop (?:sending|emailing)|remove me)\b",
    "order_status": r"\b(where(?:'s| is) my (?:order|parcel|package)|track(?:ing)?|"
    r"order (?:status|number|#?\d+)|#\d{3,}|has my order|"
    # A reference as the shop writes it ("B-ORDER-777"), or one asked after ("where is C5363").
    r"[a-z]+(?:-[a-z]+)*-\d{3,}|where(?:'s| is) #?[a-z]*\d{3,}|not arrived|delivered yet|"
    # Questions about their own order history: by date, product or state.
    r"(?:what|when|which|did|have) (?:\w+ ){0,3}i (?:ever )?(?:order|ordered|buy|bought|"
    r"purchase|purchased|return|returned|cancel|cancelled|place|placed)|my (?:orders|purchases|"
    r"returns|"
    r"(?:last|latest|recent|most recent|cancell?ed) orders?)|(?:cancell?ed|returned) orders?|"
    r"orders? (?:placed )?(?:from|in|on|during) (?:last|this|\d|jan|feb|mar|apr|may|jun|jul|"
    r"aug|sep|oct|nov|dec))",
    "product": r"\b(do you (?:sell|have|stock|do|carry)|in stock|how much (?:is|are|does|do)|"
    r"price of|what does .{1,40} cost|tell me about (?:the|your)|still (?:available|sold|"
    r"for sale))\b",
}

REFUSALS = {
    "injection": "I can't help with that. I can answer questions about our products, your own "
    "orders, deliveries and returns.",
    "off_topic": "I can only help with questions about our shop: products, your orders, "
    "deliveries and returns.",
}


@dataclass
class Reply:
    text: str
    intent: str
    citations: list[int] = field(default_factory=list)  # article ids
    refused: str = ""  # "injection" / "off_topic" / ""
    handoff: bool = False
    source: str = ""  # "model", "extract", "orders", "catalogue", "fixed"


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
        self,
        message: str,
        orders: list[Order] | None = None,
        identified: bool = False,
        catalogue: Catalogue | None = None,
        on_text: Callable[[str], None] | None = None,
        today: date | None = None,
    ) -> Reply:
        """`orders` are the identified customer's own orders, most recent first (None when
        nobody is identified); `catalogue` the workspace's own products; `on_text` is called
        with the model's answer so far as it is written (answers from facts come whole);
        `today` dates "last month"."""
        refused = screen(message)
        if refused:
            return Reply(REFUSALS[refused], "refused", refused=refused, source="fixed")
        intent = self.intent(message)
        if intent == "human":
            text = "I've asked a member of our team to join this conversation; they'll reply here."
            return Reply(text, intent, handoff=True, source="fixed")
        if intent == "order_status":
            reply = self._order_status(message, orders if identified else None, today)
            return self._with_articles(message, reply)  # e.g. the article on tracking
        if intent == "unsubscribe":
            text = (
                "You can stop our e-mails with the unsubscribe link at the foot of any e-mail "
                "from us, or from your preferences page; it takes effect at once."
            )
            return self._with_articles(message, Reply(text, intent, source="fixed"))
        if intent == "product" and catalogue is not None:
            found = self._from_catalogue(message, catalogue)
            if found is not None:
                return found
            return self._no_product(message, on_text)
        return self._from_knowledge(message, intent, on_text)

    def _no_product(self, message: str, on_text: Callable[[str], None] | None) -> Reply:
        """A product question no product of ours matches: the help articles answer where one is
        clearly about it ("how much is delivery?"), else we say so — the model, given passages
        merely near the question, described products we do not sell."""
        hits = self.index.search(message, k=1)
        # Clearly about an article (gift vouchers 0.64, next-day delivery 0.53), not merely
        # near one ("a unicorn lamp" is 0.36 from the article on stock).
        if hits and hits[0].similarity >= CATALOGUE_CITATION:
            return self._from_knowledge(message, "product", on_text)
        asked = " ".join(catalogue_words.as_written(message))
        named = f' matching "{asked}"' if asked else ""
        text = (
            f"I can't find a product{named} in our shop. Would you like me to pass your "
            "question to a member of our team?"
        )
        return Reply(text, "product", source="catalogue")

    def _order_status(self, message: str, orders: list[Order] | None, today: date | None) -> Reply:
        if orders is None:
            text = (
                "I can look up orders once I know who you are: please open this chat from the "
                "link in one of our e-mails or from your account."
            )
            return Reply(text, "order_status", source="fixed")
        text = order_questions.answer(message, orders, today)
        return Reply(text, "order_status", source="orders")

    def _from_catalogue(self, message: str, catalogue: Catalogue) -> Reply | None:
        """The products a question names, from the catalogue's facts; None when none matches
        (the knowledge base answers instead)."""
        query = catalogue_words.content_words(message)
        found = catalogue.find(query)
        if not found:
            return None
        if len(found) == 1:
            text = _product_text(found[0], full=True)
        else:
            listed = "; ".join(_product_text(p) for p in found[:LISTED_PRODUCTS])
            asked = " ".join(catalogue_words.as_written(message))
            text = f'We have {len(found)} products matching "{asked}": {listed}'
            if len(found) > LISTED_PRODUCTS:
                text += f" … and {len(found) - LISTED_PRODUCTS} more"
            text += "."
        reply = Reply(text, "product", source="catalogue")
        hits = self.index.search(message, k=1)
        if hits and hits[0].similarity >= CATALOGUE_CITATION:
            reply.citations = [hits[0].passage.article]
        return reply

    def _with_articles(self, message: str, reply: Reply) -> Reply:
        hits = self.index.search(message, k=1)
        if hits and hits[0].similarity >= self.min_similarity:
            reply.citations = [hits[0].passage.article]
        return reply

    def _from_knowledge(
        self, message: str, intent: str, on_text: Callable[[str], None] | None = None
    ) -> Reply:
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
            text = self._generate(message, context, on_text)
            if text:
                source = "model"
        if not text:
            text = self._extract(message, [h.passage for h in hits if h.passage.article in cited])
        return Reply(text, intent, citations=cited, source=source)

    def _generate(
        self, message: str, context: str, on_text: Callable[[str], None] | None = None
    ) -> str:
        conversation = [
            {
                "role": "system",
                "content": "You answer customers' questions for a shop, using only "
                "the help text given. Answer in one or two sentences.",
            },
            {"role": "user", "content": f"Help text:\n{context}\n\nQuestion: {message}"},
        ]
        facts = guardrails.Facts(context + "\n" + message)
        try:
            if on_text is not None and hasattr(self.model, "stream"):
                out = self._streamed(conversation, facts, on_text)
            else:
                out = self.model.generate([conversation], max_new_tokens=70, temperature=0.0)
                out = out[0].text
        except ModelUnavailable:
            return ""  # the passages' own sentences answer instead
        out = " ".join(SENTENCE_END.split(out.strip())[:2]).strip()
        if len(out) < 15 or out[-1:] not in ".!?":
            return ""
        if not _grounded(out, facts) or self._contradicts(out, context):
            return ""
        return out

    def _contradicts(self, answer: str, context: str) -> bool:
        """A sentence of the answer that negates while the passage sentence nearest to it does
        not (or the other way round): the model's "not" is the one thing the similarity of
        the words cannot see."""
        said = [s for s in SENTENCE_END.split(answer) if s.strip()]
        source = [s for s in SENTENCE_END.split(context) if len(s.strip()) > 10]
        if not said or not source:
            return False
        nearest = np.argmax(self.encoder.encode(said) @ self.encoder.encode(source).T, axis=1)
        return any(
            bool(NEGATION.search(s)) != bool(NEGATION.search(source[int(i)]))
            for s, i in zip(said, nearest, strict=True)
        )

    def _streamed(self, conversation: list[dict], facts, on_text: Callable[[str], None]) -> str:
        """The model's answer, shown piece by piece; stops at the second finished sentence, or
        at the first finished sentence that brings a number or name the help text lacks (the
        answer is then extracted, and replaces what was shown)."""
        text, checked = "", 0
        pieces = self.model.stream(conversation, max_new_tokens=70, temperature=0.0)
        try:
            for piece in pieces:
                text += piece
                on_text(text.strip())
                finished = SENTENCE_END.split(text.strip())[:-1]
                for sentence in finished[checked:]:
                    if not _grounded(sentence, facts):
                        return ""
                checked = len(finished)
                if checked >= 2:
                    break
        finally:
            close = getattr(pieces, "close", None)  # a generator: stops the decoding
            if close is not None:
                close()
        return text

    def _extract(self, message: str, found: list) -> str:
        """The two sentences of the found passages closest to the question, in their order."""
        sentences = [
            s.strip() for p in found for s in SENTENCE_END.split(p.text) if len(s.strip()) > 20
        ]
        if not sentences:
            return found[0].text
        similarity = self.encoder.encode(sentences) @ self.encoder.encode([message])[0]
        keep = sorted(np.argsort(-similarity)[:2])
        return " ".join(re.sub(r"[*_`#>]", "", sentences[i]) for i in keep)


SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
NEGATION = re.compile(r"\b(?:not|no|never|cannot|nor|unable|none)\b|n't\b|n’t\b", re.IGNORECASE)
LISTED_PRODUCTS = 4
# A product answer cites a help article only when it is clearly about the question (care,
# sizes); below this the catalogue's facts stand alone.
CATALOGUE_CITATION = 0.5


def _grounded(text: str, facts) -> bool:
    """No number, name or personal data that the help text (or the question) lacks."""
    rules = guardrails.BrandRules(language="", min_length={}, max_length={})
    report = guardrails.check({"text": text}, rules, facts)
    return not any(
        f.rule in guardrails.INVENTED or f.rule == "personal_data" for f in report.failures
    )


def _product_text(product: Product, full: bool = False) -> str:
    """A product's facts: name, price, whether it is still sold (and with `full`, its
    description's first two sentences)."""
    price = f"{product.price} {product.currency}" if product.price else "no price listed"
    text = f"{product.name} ({price}"
    text += ")" if product.active else ", no longer sold)"
    if not full:
        return text
    text += " is available to order." if product.active else " is no longer sold."
    described = " ".join(SENTENCE_END.split(product.description.strip())[:2]).strip()
    # Imported catalogues often repeat the name as the description (Online Retail II does).
    if described and described.casefold().rstrip(".") != product.name.casefold():
        text += " " + re.sub(r"[*_`#>]", "", described)
    return text
