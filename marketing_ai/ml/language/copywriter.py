"""Marketing copy from a brief: K variants of subject / preheader / body (e-mail) or text (SMS),
checked against the brand's guardrails; failing variants are written again (new seed) up to
`rounds` times, and what still fails is returned with its reasons.

A small model writes one field per prompt (subject, preheader and body are separate, short
tasks it can do), batched over the K variants. Tokens the brief gives no licence for — digits when
the brief has no numbers, currency and percent signs, markup, emoji — are suppressed while
decoding; the guardrails still check every result, since suppression cannot stop a model from
spelling out "twenty percent" or naming a product that is not in the brief.
"""

import html
import re
import time
import unicodedata
from dataclasses import dataclass, field

from marketing_ai.ml.language import fewshot, guardrails
from marketing_ai.ml.language.guardrails import BrandRules, Facts

LANGUAGES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "nl": "Dutch",
             "it": "Italian", "pt": "Portuguese"}  # fmt: skip


@dataclass
class Product:
    name: str
    description: str = ""
    price: float | None = None


@dataclass
class Brief:
    goal: str
    products: list[Product]
    segment: str = ""  # the audience, in words
    tone: str = "friendly"
    language: str = "en"
    channel: str = "email"  # email or sms
    offer: str = ""  # e.g. "15% off with code TEA15 until Sunday"; empty: no offer may be made
    brand: str = ""
    show_prices: bool = False
    # Past winning variants' fields, best first ({"subject", "preheader", "body"} or {"text"}).
    examples: list[dict] = field(default_factory=list)

    def facts_text(self) -> str:
        parts = [self.goal, self.segment, self.offer, self.brand]
        for p in self.products:
            parts += [p.name, p.description]
            if self.show_prices and p.price is not None:
                parts.append(f"{p.price:.2f}")
        return "\n".join(x for x in parts if x)

    def facts(self, catalogue: list[str] = (), people=(), month: int | None = None) -> Facts:
        """month: when the mail goes out (1-12), its season where the brief's text names none."""
        return Facts(
            self.facts_text(), [p.name for p in self.products], list(catalogue), people, month
        )


@dataclass
class Draft:
    fields: dict[str, str]
    report: guardrails.Report
    attempts: int
    seed: int
    prompts: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.report.passed


def _system(brief: Brief) -> str:
    language = LANGUAGES.get(brief.language, brief.language)
    who = f" for {brief.brand}" if brief.brand else ""
    return (
        f"You are a copywriter{who}. Tone: {brief.tone}. Write in {language}. Mention only the "
        "products and facts given."
    )


def _product_lines(brief: Brief) -> str:
    lines = []
    for p in brief.products:
        line = f"- {_readable(p.name)}"
        if p.description and p.description.lower() != p.name.lower():
            line += f": {p.description}"
        if brief.show_prices and p.price is not None:
            line += f" ({p.price:.2f})"
        lines.append(line)
    return "\n".join(lines)


def _readable(name: str) -> str:
    """Catalogue names are often upper case ("WHITE HANGING HEART T-LIGHT HOLDER")."""
    return name.title() if name.isupper() else name


TASKS = {
    "subject": ("Write a catchy newsletter headline, under 8 words, about these products. Reply "
                "with the headline only.", 24),
    "preheader": ("Write one sentence, under 15 words, inviting customers to look at these "
                  "products. Reply with the sentence only.", 32),
    "body": ("Describe these products in two or three sentences for a shop newsletter.", 80),
    "text": ("Write a text message, under 25 words, inviting customers to look at these "
             "products. Reply with the message only.", 48),
}  # fmt: skip


def prompt(brief: Brief, task: str) -> list[dict]:
    """A small model writes a product-centred line far better than "an e-mail" (which it
    opens with "Dear Sarah" and fills with invention), so the prompt is about the products."""
    instruction, _ = TASKS[task]
    lines = ["Products:", _product_lines(brief)]
    if brief.segment:
        lines.append(f"Customers: {brief.segment}")
    if brief.offer:
        lines.append(f"Offer: {brief.offer}")
    lines.append(f"Goal: {brief.goal}")
    lines.append(instruction)
    return [
        {"role": "system", "content": _system(brief)},
        *fewshot.messages(brief, task),
        {"role": "user", "content": "\n".join(lines)},
    ]


OPENINGS = ("Our {}", "Meet the {}", "The {}", "Discover our {}")


def opening(brief: Brief, task: str, slot: int) -> str:
    """The first words of a body or SMS: a product of the brief, named as the catalogue has it.
    Started on the product, a small model stays on it (bench/copywriting.py); the slot varies
    product and phrasing."""
    if task not in ("body", "text") or not brief.products:
        return ""
    product = brief.products[slot % len(brief.products)]
    return OPENINGS[slot % len(OPENINGS)].format(_readable(product.name))


def fields_for(brief: Brief) -> tuple[str, ...]:
    return ("text",) if brief.channel == "sms" else ("subject", "preheader", "body")


SENTENCES = {"body": 3, "text": 2}
_PREFIX = re.compile(
    r"^\s*(?:subject(?: line)?|preheader|preview|body|sms|message|text)\s*:\s*", re.I
)


def clean(task: str, raw: str, rules: BrandRules) -> str:
    """The model's answer as a field: first line for one-line fields, labels and quotes
    stripped, symbols the brand never uses dropped, cut at a sentence end within the length."""
    # Models trained on web text write "&amp;" and "&#39;"; the editor would show them as such.
    text = "".join(ch for ch in html.unescape(raw) if _printable(ch))
    lines = [_PREFIX.sub("", line).strip(" \"'*#") for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    if task in ("subject", "preheader"):
        text = lines[0]
    else:
        text = " ".join(lines)
    text = re.sub(r"\s+", " ", text).strip()
    if task in ("body", "text"):
        # The longer a small model writes, the more it invents: keep the first sentences.
        text = " ".join(re.split(r"(?<=[.!?])\s+", text)[: SENTENCES[task]])
    limit = rules.max_length.get(task)
    if limit and len(text) > limit:
        cut = text[:limit]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        text = cut[: end + 1] if end > limit // 3 else cut.rsplit(" ", 1)[0].rstrip(",;:-")
    if task in ("body", "text") and text and text[-1] not in ".!?":
        end = max(text.rfind("."), text.rfind("!"), text.rfind("?"))
        if end > len(text) // 2:
            text = text[: end + 1]  # drop a trailing half sentence
    return text


def _printable(ch: str) -> bool:
    if ch in "\n +&":  # "+" and "&" live in product names ("Charlie+Lola", "Tea & Cake")
        return True
    category = unicodedata.category(ch)
    return category[0] in "LNPZ" and category != "Co" and (ord(ch) < 0x2000 or ch in "‘’“”–—…")


def with_required(task: str, text: str, rules: BrandRules) -> str:
    """Required phrases (a legal line) are appended, not left to the model; an SMS is cut at a
    word to leave them room within its length."""
    if task not in ("body", "text"):
        return text
    missing = [
        p
        for p in rules.required_phrases
        if guardrails.normalise(p) not in guardrails.normalise(text)
    ]
    if not missing:
        return text
    if task == "body":
        return "\n\n".join([text, *missing])
    tail = " ".join(missing)
    limit = rules.max_length.get("text")
    if limit and len(text) + 1 + len(tail) > limit:
        text = text[: max(0, limit - len(tail) - 1)].rsplit(" ", 1)[0].rstrip(",;:-")
    return f"{text} {tail}".strip()


def suppressed_tokens(model, brief: Brief) -> list[int]:
    """Token ids the model may not produce for this brief."""
    allow_digits = _allows_digits(brief)
    symbols = set("$£€¥%@#<>*_[]{}|\\~^=`")

    def banned(token: str) -> bool:
        if any(ch in symbols for ch in token):
            return True
        if not allow_digits and any(ch.isdigit() for ch in token):
            return True
        return any(not _printable(ch) for ch in token if ch not in "\t\r")

    cache = model.__dict__.setdefault("_suppress_cache", {})
    if allow_digits not in cache:
        cache[allow_digits] = model.token_ids_where(banned)
    return cache[allow_digits]


def write(
    model, brief: Brief, rules: BrandRules, k: int = 4, **options
) -> tuple[list[Draft], dict]:
    """K drafts for one brief (see write_many)."""
    drafts, stats = write_many(model, [brief], rules, k=k, **options)
    return drafts[0], stats


def write_many(
    model,
    briefs: list[Brief],
    rules: BrandRules,
    k: int = 4,
    rounds: int = 6,
    oversample: int = 3,
    seed: int = 0,
    catalogue: list[str] = (),
    people=(),
    temperature: float = 0.7,
    top_p: float = 0.9,
    batch_size: int | None = None,
    progress=None,
) -> tuple[list[list[Draft]], dict]:
    """K drafts per brief. A field that fails its checks is written again — `oversample`
    candidates per round, the first passing one kept — for up to `rounds` rounds; fields that
    passed are kept. Each draft is then checked whole; what still fails keeps its reasons.
    Returns the drafts and run statistics (tokens, seconds, first-try passes)."""
    facts = [b.facts(catalogue, people) for b in briefs]
    contexts = [guardrails.Context(f, rules) for f in facts]
    batch_size = batch_size or getattr(model, "batch_size", 16)  # sized to the device
    fields: dict[tuple[int, int], dict[str, str]] = {}
    attempts: dict[tuple[int, int], int] = {}
    pending = [
        (b, i, task) for b in range(len(briefs)) for i in range(k) for task in fields_for(briefs[b])
    ]
    first_try_failed: set[tuple[int, int]] = set()
    first_try_invented: set[tuple[int, int]] = set()
    stats = {"tokens": 0, "seconds": 0.0, "first_try_passed": 0, "generations": 0}
    for attempt in range(1, rounds + 1):
        if not pending:
            break
        started = time.perf_counter()
        jobs = [(b, i, task, c) for b, i, task in pending for c in range(oversample)]
        if attempt == 1:
            jobs = [(b, i, task, 0) for b, i, task in pending]  # the first try is one draft
        written = _write_round(
            model, briefs, rules, jobs, seed + 7919 * attempt, temperature, top_p, batch_size, stats
        )
        still = []
        for b, i, task in pending:
            candidates = [written[j] for j in jobs if j[:3] == (b, i, task)]
            for text in candidates:
                failures = guardrails.check_field(task, text, rules, facts[b], contexts[b])
                ok = not failures
                if attempt == 1 and any(f.rule in guardrails.INVENTED for f in failures):
                    first_try_invented.add((b, i))
                if ok:
                    break
            fields.setdefault((b, i), {})[task] = text
            attempts[(b, i)] = attempt
            if not ok:
                still.append((b, i, task))
                if attempt == 1:
                    first_try_failed.add((b, i))
        pending = still
        stats["seconds"] += time.perf_counter() - started
        if progress:
            progress(attempt / rounds, f"round {attempt}: {len(pending)} fields still failing")
    drafts = []
    for b, brief in enumerate(briefs):
        row = []
        for i in range(k):
            copy = {task: fields[(b, i)][task] for task in fields_for(brief)}
            report = guardrails.check(copy, rules, facts[b], contexts[b])
            prompts = {task: prompt(brief, task) for task in copy}
            row.append(Draft(copy, report, attempts[(b, i)], seed, prompts))
            if report.passed and (b, i) not in first_try_failed:
                stats["first_try_passed"] += 1
        drafts.append(row)
    stats["first_try_invented"] = len(first_try_invented)
    return drafts, stats


def _write_round(model, briefs, rules, jobs, seed, temperature, top_p, batch_size, stats):
    written = {}
    # Batches share a field (so a similar length) and a decoding constraint.
    jobs = sorted(jobs, key=lambda job: (job[2], _allows_digits(briefs[job[0]])))
    for start in range(0, len(jobs), batch_size):
        groups: dict[tuple, list] = {}
        for job in jobs[start : start + batch_size]:
            groups.setdefault((job[2], _allows_digits(briefs[job[0]])), []).append(job)
        for (task, _), group in groups.items():
            outputs = model.generate(
                [prompt(briefs[job[0]], task) for job in group],
                max_new_tokens=TASKS[task][1],
                temperature=temperature,
                top_p=top_p,
                seed=seed + start,
                suppress=suppressed_tokens(model, briefs[group[0][0]]),
                prefixes=[opening(briefs[job[0]], task, job[1] + job[3]) for job in group],
            )
            for job, out in zip(group, outputs, strict=True):
                written[job] = with_required(task, clean(task, out.text, rules), rules)
                stats["tokens"] += out.tokens
                stats["generations"] += 1
    return written


def _allows_digits(brief: Brief) -> bool:
    return bool(guardrails.NUMBER.search(brief.facts_text()))


def template_copy(brief: Brief, k: int = 4, rules: BrandRules | None = None) -> list[dict]:
    """The baseline a marketer gets without a model: fill-in templates from the brief."""
    rules = rules or BrandRules()
    names = [_readable(p.name) for p in brief.products] or ["our range"]
    lead = names[0]
    description = next((p.description for p in brief.products if p.description), "")
    subjects = [
        f"New for you: {lead}",
        f"Have you seen our {lead}?",
        f"Picked for you: {lead}",
        f"Discover the {lead}",
    ]
    preheaders = [
        f"{brief.goal.rstrip('.')}.",
        f"Take a look at {', '.join(names[:3])}.",
        "Chosen with you in mind.",
        f"Our {lead} is waiting.",
    ]
    out = []
    for i in range(k):
        body = f"We think you'll love the {lead}. {description}".strip()
        if len(names) > 1:
            body += f" Also see: {', '.join(names[1:4])}."
        if brief.channel == "sms":
            fields = {"text": with_required("text", clean("text", body, rules), rules)}
        else:
            fields = {
                "subject": clean("subject", subjects[i % 4], rules),
                "preheader": clean("preheader", preheaders[i % 4], rules),
                "body": with_required("body", clean("body", body, rules), rules),
            }
        out.append(fields)
    return out


def as_html(body: str) -> str:
    """A body as HTML paragraphs, safe inside a Django template: markup escaped and template
    syntax neutralised, so generated text can never run template code."""
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    escaped = [html.escape(p).replace("{", "&#123;").replace("}", "&#125;") for p in paragraphs]
    return "\n".join(f"<p>{p}</p>" for p in escaped)
