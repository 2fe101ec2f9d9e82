"""The template engine variants are written in: Django's template language, fenced in.

A variant is written by whoever holds a `campaigns:write` key, so its template is untrusted code
run on our servers. Three fences keep it from doing harm:

- **Plain data only.** The context is checked before rendering: strings, numbers, dates, and
  read-only records and tuples of them (`plain`). No model object, queryset or callable gets in,
  so a template cannot walk from its recipient to other rows (`customer.workspace.members...`).
- **An allow-list of tags and filters.** No `{% debug %}` (it dumps the context and every loaded
  module), no `include`/`extends` (files), no `url`, `csrf_token`, `lorem`; `{% load %}` accepts
  only `recommendations` (the recommend tag is built in; templates written the Django way load
  it).
- **A budget per message**: wall time, characters made (written out, or built by a filter,
  even for a value only bound by `{% with %}`), and loop iterations, charged as the template
  runs; the filters that multiply their input (`ljust`, `join`, `floatformat`, ...) are capped
  before they allocate. A template over budget raises `RenderLimit`, which fails that
  message with the reason instead of holding a web or send worker.
"""

import contextvars
import functools
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.template import Engine, Library, Node, TemplateSyntaxError, defaultfilters, defaulttags
from django.utils.html import format_html_join

register = Library()


class VariantError(ValueError):
    """A variant whose template cannot compile or render; carries a message for staff."""


class RenderLimit(VariantError):
    """The template used more time, output or loop iterations than one message may."""


# --- plain data -----------------------------------------------------------------------------
class Record(Mapping):
    """A read-only mapping for templates: `{{ customer.first_name }}` works, nothing writes.
    `str()` is its `label`, so `{{ customer }}` prints a name rather than a dict."""

    __slots__ = ("_data", "_label")

    def __init__(self, data: Mapping, label: str = "") -> None:
        self._data = {str(k): plain(v) for k, v in data.items()}
        self._label = label

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __str__(self) -> str:
        return self._label

    def __repr__(self) -> str:
        return f"Record({self._data!r})"


SCALARS = (str, int, float, bool, Decimal, datetime, date, clock, timedelta, type(None))


def plain(value: Any) -> Any:
    """JSON-like data as template-safe values: mappings become Records, sequences tuples.
    Anything else (a model, a queryset, a function) is refused with TypeError."""
    if isinstance(value, SCALARS) or isinstance(value, Record):
        return value
    if isinstance(value, Mapping):
        return Record(value)
    if isinstance(value, list | tuple):
        return tuple(plain(v) for v in value)
    raise TypeError(f"templates get plain data only, not {type(value).__name__}")


def check_plain(context: Mapping) -> None:
    for key, value in context.items():
        try:
            plain(value)
        except TypeError as exc:
            raise TypeError(f"template context {key!r}: {exc}") from None


# --- the budget -----------------------------------------------------------------------------
MAX_ITERATIONS = 20_000
MAX_WIDTH = 1_000  # ljust / rjust / center / stringformat widths
MAX_DECIMALS = 20  # floatformat


class Budget:
    def __init__(self, seconds: float, chars: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.chars_left = chars
        self.chars = chars
        self.iterations_left = MAX_ITERATIONS

    def spend(self, *, chars: int = 0, iterations: int = 0) -> None:
        self.chars_left -= chars
        self.iterations_left -= iterations
        if self.chars_left < 0:
            raise RenderLimit(f"the template made more than {self.chars:,} characters")
        if self.iterations_left < 0:
            raise RenderLimit(f"loops ran more than {MAX_ITERATIONS:,} times")
        if time.monotonic() > self.deadline:
            raise RenderLimit(f"rendering took longer than {self.seconds:g} s")


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("budget", default=None)


@contextmanager
def budget():
    """One budget for everything rendered inside (the subject, text and HTML of one message)."""
    if _budget.get() is not None:  # nested: the outer budget already counts
        yield
        return
    token = _budget.set(
        Budget(
            getattr(settings, "CAMPAIGN_RENDER_SECONDS", 2.0),
            getattr(settings, "CAMPAIGN_RENDER_MAX_CHARS", 1_000_000),
        )
    )
    try:
        yield
    finally:
        _budget.reset(token)


def _spend(**amounts: int) -> None:
    current = _budget.get()
    if current is not None:
        current.spend(**amounts)


def _metered_render(node: Node):
    """render_annotated of a leaf node that charges what it wrote (leaves write all output)."""
    render = node.render_annotated

    def metered(context):
        output = render(context)
        current = _budget.get()
        if current is not None:  # inlined spend(): this runs for every piece of every message
            current.chars_left -= len(output)
            if current.chars_left < 0 or time.monotonic() > current.deadline:
                current.spend()
        return output

    return metered


def meter(template) -> None:
    """Charges a compiled template's leaves for their output as it renders."""
    for node in template.nodelist.get_nodes_by_type(Node):
        if not any(getattr(node, attr, None) for attr in node.child_nodelists):
            node.render_annotated = _metered_render(node)


class _MeteredSequence:
    """The sequence of a `{% for %}`: its length is charged before the loop starts, so nested
    loops stop at the budget however empty their bodies are."""

    def __init__(self, expression) -> None:
        self.expression = expression

    def resolve(self, context, ignore_failures: bool = False):
        values = self.expression.resolve(context, ignore_failures=ignore_failures)
        if values is None:
            return values
        if not hasattr(values, "__len__"):
            values = list(values)
        _spend(iterations=len(values))
        return values

    def __str__(self) -> str:
        return str(self.expression)


# --- tags -----------------------------------------------------------------------------------
ALLOWED_TAGS = ("autoescape", "comment", "cycle", "filter", "firstof", "if", "ifchanged", "now",
                "resetcycle", "spaceless", "templatetag", "verbatim", "widthratio",
                "with")  # fmt: skip
for _name in ALLOWED_TAGS:
    register.tag(_name, defaulttags.register.tags[_name])


@register.tag("for")
def do_for(parser, token):
    node = defaulttags.do_for(parser, token)
    node.sequence = _MeteredSequence(node.sequence)
    return node


@register.tag("regroup")
def do_regroup(parser, token):
    """`{% regroup %}` walks its list like a loop does, so the list is charged like a loop's."""
    node = defaulttags.regroup(parser, token)
    node.target = _MeteredSequence(node.target)
    return node


class _NoOp(Node):
    def render(self, context) -> str:
        return ""


@register.tag("load")
def do_load(parser, token):
    """`{% load recommendations %}` compiles (the tag is built in); nothing else loads."""
    names = token.split_contents()[1:]
    if names != ["recommendations"]:
        raise TemplateSyntaxError(
            "{% load %} is not available in variants; the recommend tag is built in"
        )
    return _NoOp()


RECOMMENDATIONS = "recommendations"  # context key of the recipient's precomputed products


@register.simple_tag(takes_context=True)
def recommend(context, who=None, count=4) -> tuple:
    """`{% recommend customer 4 as picks %}`: the recipient's products, worked out before
    rendering (see `rendering.recipient_context`). Anyone but the recipient gets none."""
    if who is None or who is not context.get("customer"):
        return ()
    picks = context.get(RECOMMENDATIONS) or ()
    return tuple(picks[: max(1, min(int(count), MAX_RECOMMENDATIONS))])


MAX_RECOMMENDATIONS = 20


def recommendation_count(templates) -> int:
    """How many products the templates' `{% recommend %}` tags ask for (0: none; a count that
    is a variable asks for the most)."""
    wanted = 0
    for template in templates:
        for node in template.nodelist.get_nodes_by_type(Node):
            if getattr(node, "func", None) is not recommend:
                continue
            count = node.args[1] if len(node.args) > 1 else None
            literal = getattr(getattr(count, "var", None), "literal", None)
            if count is None:
                wanted = max(wanted, 4)
            elif isinstance(literal, int):
                wanted = max(wanted, min(max(1, literal), MAX_RECOMMENDATIONS))
            else:
                wanted = MAX_RECOMMENDATIONS
    return wanted


# --- filters --------------------------------------------------------------------------------
CAPPED = ("center", "ljust", "rjust", "floatformat", "stringformat", "join")
LEFT_OUT = ("pprint", "json_script", "random")  # repr() of values, <script> blocks, nondeterminism
for _name, _function in defaultfilters.register.filters.items():
    if _name not in CAPPED and _name not in LEFT_OUT:
        register.filters[_name] = _function


def _width(arg) -> None:
    numbers = [int(n) for n in re.findall(r"\d+", str(arg))]
    if numbers and max(numbers) > MAX_WIDTH:
        raise RenderLimit(f"a width or precision above {MAX_WIDTH} ({arg})")


def _capped_width(name: str):
    original = defaultfilters.register.filters[name]

    def capped(value, arg):
        _width(arg)
        return original(value, arg)

    return capped


for _name in ("center", "ljust", "rjust", "stringformat"):
    register.filter(_name, _capped_width(_name), is_safe=True)


@register.filter(is_safe=True)
def floatformat(text, arg=-1):
    numbers = [int(n) for n in re.findall(r"\d+", str(arg))]
    if numbers and max(numbers) > MAX_DECIMALS:
        raise RenderLimit(f"floatformat takes at most {MAX_DECIMALS} decimals ({arg})")
    return defaultfilters.floatformat(text, arg)


@register.filter(is_safe=True, needs_autoescape=True)
def join(value, arg, autoescape=True):
    try:
        size = sum(len(str(v)) for v in value) + len(str(arg)) * max(0, len(value) - 1)
    except TypeError:
        return value
    _spend(chars=size)  # charged before the string exists
    return defaultfilters.join(value, arg, autoescape=autoescape)


@register.filter
def product_names(products) -> str:
    """`{{ picks|product_names }}`: the names, comma-separated."""
    return format_html_join(", ", "{}", ((p["name"],) for p in products or ()))


def _size(value) -> int:
    return len(value) if isinstance(value, str | tuple | list | Mapping) else 0


def _charged(function):
    """A filter whose every result is charged to the budget: values built for `{% with %}` or
    `firstof ... as` count too, so `a|add:a` doubled 26 times stops at the budget (~20 doublings
    of a short string), not at gigabytes. Each result is at most twice what was charged before."""

    @functools.wraps(function)  # keeps is_safe, needs_autoescape and the signature Django checks
    def charged(*args, **kwargs):
        result = function(*args, **kwargs)
        _spend(chars=_size(result))
        return result

    return charged


for _name, _function in list(register.filters.items()):
    register.filters[_name] = _charged(_function)


# --- the engine -----------------------------------------------------------------------------
class SandboxEngine(Engine):
    default_builtins: list[str] = []  # not Django's tags and filters: only this module's


ENGINE = SandboxEngine(
    builtins=["campaigns.sandbox"],
    libraries={},
    autoescape=True,
    string_if_invalid="",
    loaders=[],
)


def compile_template(source: str):
    template = ENGINE.from_string(source or "")
    meter(template)
    return template


BRACES = re.compile(r"[{}]")


def literal(text: str) -> str:
    """Text as a template that renders to exactly that text: every `{` and `}` becomes a
    `templatetag`, so a product name like `{{ customer.workspace }}` cannot run (`%` and `#`
    need no escaping: every tag and comment opens with a brace)."""
    return BRACES.sub(
        lambda m: (
            "{% templatetag openbrace %}" if m.group() == "{" else "{% templatetag closebrace %}"
        ),
        text or "",
    )


LITERAL_BRACE = re.compile(r"\{% templatetag (openbrace|closebrace) %\}")


def unliteral(source: str) -> str:
    """The text a `literal()` template renders to (for checks that read copy as words)."""
    return LITERAL_BRACE.sub(lambda m: "{" if m.group(1) == "openbrace" else "}", source or "")
