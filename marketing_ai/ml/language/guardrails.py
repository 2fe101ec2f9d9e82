"""Brand guardrails: checks that generated (or edited) copy keeps to the brand's rules and to the
facts it was given. Each rule is a small function over the copy's fields; `check` runs them all
and returns every failure with the rule, the field and what was found.

"Facts" are checked, not asked for: a number, price, percentage, date, product or name that the
brief (or the catalogue, for names) does not contain is a failure, whatever the prompt said.
"""

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from marketing_ai.ml.language import faithfulness

FIELDS = ("subject", "preheader", "body", "text")

# Generous defaults; each workspace edits its own in the admin.
MAX_LENGTH = {"subject": 70, "preheader": 110, "body": 1500, "text": 160}
MIN_LENGTH = {"subject": 8, "body": 60, "text": 20}

# Not "may": far more often a verb than a month.
MONTHS = (
    "january february march april june july august september october november "
    "december jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
DISCOUNT_WORDS = ("discount", "discounts", "discounted", "percent off", "coupon", "voucher",
                  "promo code", "promo", "half price", "half-price", "clearance", "markdown",
                  "bogo", "buy one get one", "sale")  # fmt: skip
CURRENCY = r"[$£€¥]|\b(?:usd|gbp|eur|dollars?|pounds?|euros?|pence|cents?)\b"

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
PRICE = re.compile(rf"(?:{CURRENCY})\s*\d|\d[\d.,]*\s*(?:{CURRENCY})", re.I)
PERCENT = re.compile(r"\d+(?:\.\d+)?\s*(?:%|percent\b|per cent\b)", re.I)
# Deadlines count as dates: "ends tonight" is a fact the brief must contain.
DEADLINES = ["tonight", "tomorrow", "this weekend", "next week", "midnight", "last chance",
             "limited time", "ends soon", "today only"]  # fmt: skip
DATE = re.compile(
    r"\b\d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?\b|\b(?:"
    + "|".join(MONTHS + WEEKDAYS + DEADLINES)
    + r")\b",
    re.I,
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+?\d[\d ()-]{7,}\d")
WORD = re.compile(r"[^\W\d_][\w'’-]*")


@dataclass
class BrandRules:
    banned_words: list[str] = field(default_factory=list)
    banned_claims: list[str] = field(default_factory=list)
    required_phrases: list[str] = field(default_factory=list)  # must appear in the body / text
    allowed_terms: list[str] = field(default_factory=list)  # never "invented"
    language: str = "en"
    max_length: dict = field(default_factory=lambda: dict(MAX_LENGTH))
    min_length: dict = field(default_factory=lambda: dict(MIN_LENGTH))


@dataclass
class Facts:
    """What copy may draw on: the brief's text (goal, products, offer, audience) and, for names
    only, the catalogue. `people` are customers' full names (other people's data)."""

    brief: str
    products: list[str] = field(default_factory=list)  # the brief's product names
    catalogue: list[str] = field(default_factory=list)  # every product name in the workspace
    people: Iterable[str] = ()
    # The month the mail goes out (1-12), for its season when the brief's text names none.
    month: int | None = None
    # The brief's offer ("10% off with code GIFT10"): a body or SMS must carry it.
    offer: str = ""


@dataclass
class Failure:
    rule: str
    field: str
    detail: str


@dataclass
class Report:
    failures: list[Failure]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def invented(self) -> bool:
        return any(f.rule in INVENTED for f in self.failures)

    def as_dict(self) -> dict:
        return {"passed": self.passed, "failures": [asdict(f) for f in self.failures]}


INVENTED = {"numbers", "prices", "discounts", "dates", "products", "names"}


# Each rule in plain words, for the admin: what the copy did, not the check's name.
DESCRIPTIONS = {
    "length": "is too long or too short for the field",
    "banned_words": "uses a word the brand has banned",
    "banned_claims": "makes a claim the brand has banned",
    "required_phrases": "leaves out a line the brand requires",
    "language": "is not written in the brand's language",
    "numbers": "gives a number the brief does not contain",
    "prices": "states a price the brief does not contain",
    "discounts": "promises a discount or sale the brief does not offer",
    "dates": "names a date or deadline the brief does not contain",
    "products": "names a product that is not in the brief",
    "names": "names a brand, place or person the brief and catalogue do not contain",
    "personal_data": "contains personal data (an e-mail address, a phone number or a "
    "customer's name)",
    "off_topic": "does not name any of the brief's products",
    "unsupported": "has a sentence the brief's products, goal and offer do not support",
    "category": "calls the product something it is not, or gives it a material or feature it "
    "does not have",
    "season": "talks about a season or occasion other than the brief's",
    "order_talk": "talks about the customer's order or delivery, which a promotional mail "
    "does not do",
    "truncated": "is cut off: it does not end on a whole word or finished phrase",
    "entities": "shows HTML codes (such as &amp;) instead of the characters",
    "placeholders": "has a blank to fill in (such as [Customer Name]) left in",
    "salutation": "greets the reader by a name or shop the brief does not give",
    "offer": "leaves out the brief's offer",
    "voice": 'speaks as a chatbot or salesperson ("I\'m …") instead of as the brand',
}


def describe(failure: "Failure") -> str:
    """One failure in plain words for staff, e.g. "Subject is cut off: … (ends on 'the')"."""
    field_name = {"text": "SMS text", "all": "The copy"}.get(failure.field, failure.field)
    what = DESCRIPTIONS.get(failure.rule, f"fails the {failure.rule.replace('_', ' ')} check")
    detail = f": {failure.detail}" if failure.detail else ""
    return f"{field_name[:1].upper()}{field_name[1:]} {what}{detail}."


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return re.sub(r"\s+", " ", text).strip()


def _contains(text: str, phrase: str) -> bool:
    phrase = normalise(phrase)
    return bool(phrase) and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in NUMBER.findall(text)}


def check(
    fields: dict[str, str], rules: BrandRules, facts: Facts, context: "Context | None" = None
) -> Report:
    """Every rule over every field of the copy, then the rules over the whole of it."""
    context = context or Context(facts, rules)
    context.prepare(fields.get(name) or "" for name in ("body", "text"))
    failures = [
        f
        for name in FIELDS
        if name in fields
        for f in check_field(name, fields[name], rules, facts, context)
    ]
    body_name = "text" if "text" in fields else "body"
    body = normalise(fields.get(body_name) or "")
    for phrase in rules.required_phrases:
        if not _contains(body, phrase):
            failures.append(Failure("required_phrases", body_name, phrase))
    failures += _language(fields, rules)
    return Report(failures)


class Context:
    """What the checks derive from the facts (the brief's numbers, the vocabulary of brief and
    catalogue): built once per brief, not once per field checked."""

    def __init__(self, facts: Facts, rules: BrandRules, encoder=None) -> None:
        self.brief = normalise(facts.brief)
        self.numbers = _numbers(self.brief)
        self.vocabulary = _vocabulary(facts, rules)
        given = [normalise(p) for p in facts.products]
        # Not "other" when a given product's name contains it ("red spotty oven glove" inside
        # "red spotty oven glove double").
        self.other_products = [
            (name, key)
            for name in facts.catalogue
            if len(name) > 3 and not any((key := normalise(name)) in g for g in given)
        ]
        lines = [line.strip() for line in facts.brief.splitlines() if line.strip()]
        self.grounds = faithfulness.Grounds(
            normalise(" ".join([facts.brief, *facts.products])),
            list(dict.fromkeys(lines + list(facts.products))),
            facts.month,
            encoder,
        )
        # Copy about products is promotional copy; a chat answer (no products) may talk orders.
        self.about_products = bool(facts.products)
        self.required = [p.strip() for p in rules.required_phrases]
        self.offer_terms = faithfulness.offer_terms(facts.offer)

    def prepare(self, texts: Iterable[str]) -> None:
        """Encodes the sentences of many candidate bodies / SMS in one batch, so that checking
        them one by one afterwards finds their embeddings cached (one batch of 64 costs about
        what four single sentences do on a CPU)."""
        if not self.about_products:
            return
        found = [s for t in texts for s in faithfulness.checked_sentences(t or "", self.required)]
        if found:
            self.grounds.support(found)


def check_field(
    name: str, raw: str, rules: BrandRules, facts: Facts, context: "Context | None" = None
) -> list[Failure]:
    """The rules that concern one field alone (a writer can redo just that field)."""
    context = context or Context(facts, rules)
    raw = raw or ""
    text = normalise(raw)
    failures = _lengths(name, raw, rules)
    if not text:
        return failures
    for phrase in rules.banned_words:
        if _contains(text, phrase):
            failures.append(Failure("banned_words", name, phrase))
    for phrase in rules.banned_claims:
        if _contains(text, phrase):
            failures.append(Failure("banned_claims", name, phrase))
    failures += _invented_facts(name, text, context.brief, context.numbers)
    failures += _products(name, text, context)
    failures += _names(name, raw, context.vocabulary)
    failures += _personal_data(name, raw, text, facts)
    if name in ("body", "text"):
        failures += _on_topic(name, text, facts)
    failures += _faithful(name, raw, text, context)
    return failures


def _faithful(name: str, raw: str, text: str, context: Context) -> list[Failure]:
    """Copy about the wrong thing (see faithfulness): wrong category, season or order talk in
    any field, cut-off subjects and preheaders, entities anywhere, and unsupported sentences in
    a body or SMS."""
    found = faithfulness.entities(raw) + faithfulness.placeholders(raw)
    if name in ("subject", "preheader"):
        found += faithfulness.truncated(raw, context.grounds)
    if context.about_products:
        # The brand's own lines ("You get this e-mail because…") are not the model's claims.
        for phrase in context.required:
            text = text.replace(normalise(phrase), " ")
        found += faithfulness.category(text, context.grounds)
        found += faithfulness.made_of(text, context.grounds)
        found += faithfulness.salutation(raw, context.grounds)
        found += faithfulness.season(text, context.grounds)
        found += faithfulness.order_talk(text)
        found += faithfulness.voice(text)
        if name in ("body", "text"):
            found += faithfulness.offer_missing(text, context.offer_terms)
            found += faithfulness.unsupported(raw, context.grounds, skip=context.required)
    return [Failure(rule, name, detail) for rule, detail in found]


def _lengths(name: str, raw: str, rules: BrandRules) -> list[Failure]:
    length = len(raw.strip())
    top, bottom = rules.max_length.get(name), rules.min_length.get(name, 0)
    if top and length > top:
        return [Failure("length", name, f"{length} characters, at most {top}")]
    if length < bottom:
        return [Failure("length", name, f"{length} characters, at least {bottom}")]
    return []


def _invented_facts(name: str, text: str, brief: str, allowed: set[str]) -> list[Failure]:
    out = []
    for match in PRICE.finditer(text):
        if not _numbers(match.group()) <= allowed:
            out.append(Failure("prices", name, match.group().strip()))
    for match in PERCENT.finditer(text):
        if not _numbers(match.group()) <= allowed:
            out.append(Failure("discounts", name, match.group().strip()))
    for word in DISCOUNT_WORDS:
        if _contains(text, word) and not _contains(brief, word.strip("% ")):
            out.append(Failure("discounts", name, word))
    for match in DATE.finditer(text):
        if not _contains(brief, match.group()):
            out.append(Failure("dates", name, match.group()))
    flagged = {n for f in out for n in _numbers(f.detail)}
    for number in sorted(_numbers(text) - allowed - flagged):
        out.append(Failure("numbers", name, number))
    return out


def _products(name: str, text: str, context: Context) -> list[Failure]:
    # A plain substring test first: thousands of catalogue names, almost none present.
    return [
        Failure("products", name, product)
        for product, key in context.other_products
        if key in text and _contains(text, key)
    ]


def _vocabulary(facts: Facts, rules: BrandRules) -> set[str]:
    words = set(WORD.findall(normalise(" ".join([facts.brief, *facts.catalogue]))))
    words |= {w for term in rules.allowed_terms for w in WORD.findall(normalise(term))}
    return words


def _names(name: str, raw: str, vocabulary: set[str]) -> list[Failure]:
    """Capitalised words inside a sentence that neither the brief nor the catalogue contains:
    likely an invented product, brand, place or person. In a Title Case line every word is
    capitalised, so there only words rare in ordinary English count."""
    # wordfreq: its word lists load on first use, not when the checks are imported
    from wordfreq import zipf_frequency

    out = []
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n+|\s[-–—|]\s", raw):
        words = WORD.findall(sentence)
        capitalised = [w for w in words if w[0].isupper()]
        title_case = len(words) >= 3 and len(capitalised) * 2 > len(words)
        for word in words[1:]:
            if not word[0].isupper() or word in ("I", "I'm", "I'll", "I've", "I'd"):
                continue
            key = normalise(word).strip("'’-")
            if key in vocabulary or key.rstrip("s") in vocabulary or key + "s" in vocabulary:
                continue
            if not title_case or zipf_frequency(key, "en") < 3.0:
                out.append(Failure("names", name, word))
    return out


def _on_topic(name: str, text: str, facts: Facts) -> list[Failure]:
    """The body names at least one of the brief's products (any distinctive word of its name)."""
    # wordfreq: its word lists load on first use, not when the checks are imported
    from wordfreq import zipf_frequency

    if not facts.products:
        return []
    words = {w for p in facts.products for w in WORD.findall(normalise(p))}
    distinctive = {w for w in words if len(w) > 2 and zipf_frequency(w, "en") < 5.5}
    found = {w for w in WORD.findall(text) if w in distinctive or w.rstrip("s") in distinctive}
    return [] if found else [Failure("off_topic", name, "names none of the brief's products")]


def _personal_data(name: str, raw: str, text: str, facts: Facts) -> list[Failure]:
    out = [Failure("personal_data", name, m) for m in EMAIL.findall(raw)]
    out += [Failure("personal_data", name, m.strip()) for m in PHONE.findall(raw)]
    out += [Failure("personal_data", name, p) for p in facts.people if p and _contains(text, p)]
    return out


def _language(fields: dict[str, str], rules: BrandRules) -> list[Failure]:
    # py3langid loads its model on import; only the language check needs it
    import py3langid

    text = " ".join(fields.get(n) or "" for n in FIELDS)
    if not rules.language or len(WORD.findall(text)) < 6:
        return []  # too short to tell
    found, _ = py3langid.classify(text)
    if found != rules.language:
        return [Failure("language", "all", f"reads as {found!r}, expected {rules.language!r}")]
    return []
