"""Variant templates: compiled once per variant, rendered per recipient from plain data.

A variant's subject, preheader and HTML body are templates in the fenced engine of
`campaigns.sandbox` (allow-listed tags, a time/size/loop budget per message). They see only what
`recipient_context` prepares: the recipient's own fields as a read-only record, the products the
`{% recommend %}` tag will show (worked out before rendering), and the message's links; never a
model object, so no template reaches another row. The plain-text part is made from the HTML
*template* once (HTML -> text, template tags kept), so each message renders two templates
instead of parsing its own HTML again. Links are rewritten to signed click-tracking URLs and an
open pixel is added when tracking is on.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser

from django.conf import settings
from django.template import Context, TemplateSyntaxError, VariableDoesNotExist
from django.utils.html import escape

from campaigns import tracking
from campaigns.sandbox import (
    RECOMMENDATIONS,
    Record,
    RenderLimit,
    VariantError,
    check_plain,
    compile_template,
    literal,
    plain,
    recommendation_count,
)
from campaigns.sandbox import budget as sandbox_budget
from crm import selectors
from crm.support.links import customer_chat_url

__all__ = ["VariantError", "RenderLimit", "CompiledVariant", "compile_variant", "compiled",
           "recipient_context", "html_to_text"]  # fmt: skip

LINK = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class CompiledVariant:
    subject: object
    preheader: object
    html: object | None
    text: object
    recommendations: int = 0  # products the templates' {% recommend %} tags ask for
    chat_url: bool = False  # whether a template mentions {{ chat_url }}

    def render(self, context: dict, *, message_token: str | None = None) -> Rendered:
        """Renders from `recipient_context`'s plain data; raises RenderLimit past the budget."""
        check_plain(context)
        try:
            with sandbox_budget():
                return self._render(context, message_token)
        except VariantError:
            raise
        except Exception as exc:  # a filter or tag failed on this recipient's data
            raise VariantError(render_failure(exc)) from None

    def render_for(
        self,
        customer,
        *,
        message_token: str | None = None,
        trigger: dict | None = None,
        **links: str,
    ) -> Rendered:
        """Renders for one recipient: `recipient_context` then `render`."""
        context = recipient_context(customer, self, trigger=trigger, **links)
        return self.render(context, message_token=message_token)

    def _render(self, context: dict, message_token: str | None) -> Rendered:
        ctx = Context(context, autoescape=False)
        subject = " ".join(self.subject.render(ctx).split())
        text = self.text.render(ctx).strip()
        html = ""
        if self.html is not None:
            html = self.html.render(Context(context, autoescape=True))
            preheader = self.preheader.render(ctx).strip()
            if preheader:
                html = _hidden_preheader(preheader) + html
            if message_token:
                html = LINK.sub(lambda m: _tracked_href(m, message_token), html)
                html = _with_pixel(html, tracking.open_url(message_token))
                text = _track_text_links(text, message_token)
        # Plain str, not Django's SafeString: a page that shows a render (the admin's preview puts
        # the HTML in an iframe's srcdoc attribute) must escape it like any other text.
        return Rendered(
            subject=str.__str__(subject), html=str.__str__(html), text=str.__str__(text)
        )


# As the Variant model holds them (rows written around the forms and the API are checked here).
MAX_TEMPLATE_CHARS = {"subject": 300, "preheader": 300, "body_html": 200_000, "body_text": 100_000}


def render_failure(exc: Exception) -> str:
    """What went wrong in a render, for staff and API callers, without the values involved.

    Django's own messages carry the whole context (VariableDoesNotExist prints it: a key
    without crm:read saw a recipient's address and signed chat link in an approval error), and a
    filter's ValueError quotes the value it choked on. So: the kind of failure, and for a
    missing variable its name, which the template's author wrote."""
    if isinstance(exc, VariableDoesNotExist) and exc.params:
        return f"unknown variable or value in a filter argument: {str(exc.params[0])[:100]}"
    return f"{type(exc).__name__} while rendering (a filter or tag could not use a value)"


def compile_variant(
    *, subject: str, preheader: str, body_html: str, body_text: str
) -> CompiledVariant:
    """Compiles a variant's templates; raises VariantError naming the field that is wrong."""
    fields = {"subject": subject, "preheader": preheader, "body_html": body_html}
    for name, source in {**fields, "body_text": body_text}.items():
        if len(source or "") > MAX_TEMPLATE_CHARS[name]:
            raise VariantError(f"{name}: longer than {MAX_TEMPLATE_CHARS[name]:,} characters")
    compiled = {}
    for name, source in fields.items():
        try:
            compiled[name] = compile_template(source)
        except TemplateSyntaxError as exc:
            raise VariantError(f"{name}: {exc}") from exc
    if body_html.strip() and "unsubscribe_url" not in body_html:
        body_html = _with_footer(body_html)
        compiled["body_html"] = compile_template(body_html)
    text_source = body_text or html_to_text(body_html)
    try:
        text = compile_template(text_source)
    except TemplateSyntaxError as exc:
        raise VariantError(f"body_text: {exc}") from exc
    sources = (subject, preheader, body_html, text_source)
    return CompiledVariant(
        subject=compiled["subject"],
        preheader=compiled["preheader"],
        html=compiled["body_html"] if body_html.strip() else None,
        text=text,
        recommendations=recommendation_count([*compiled.values(), text]),
        chat_url=any("chat_url" in (source or "") for source in sources),
    )


@lru_cache(maxsize=64)  # at most ~64 x 200 KB of templates per process
def compiled_for(
    variant_id: int, updated_at: str, subject: str, preheader: str, body_html: str, body_text: str
) -> CompiledVariant:
    """Per-process cache keyed by the variant's content, so an edited variant recompiles."""
    return compile_variant(
        subject=subject, preheader=preheader, body_html=body_html, body_text=body_text
    )


def compiled(variant) -> CompiledVariant:
    return compiled_for(
        variant.pk,
        str(variant.updated_at),
        variant.subject,
        variant.preheader,
        variant.body_html,
        variant.body_text,
    )


def _hidden_preheader(text: str) -> str:
    return (
        f'<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">{escape(text)}</div>'
    )


FOOTER = (
    '<p style="font-size:12px;color:#777">'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> &middot; '
    '<a href="{{ preferences_url }}">Email preferences</a></p>'
)


def _with_footer(html: str) -> str:
    """Every e-mail gets an unsubscribe link, even when its template forgot one."""
    at = html.lower().rfind("</body>")
    return html + FOOTER if at < 0 else html[:at] + FOOTER + html[at:]


def _tracked_href(match: re.Match, message_token: str) -> str:
    url = unescape(match.group(1))
    if url.startswith(settings.PUBLIC_URL):  # our own pages (unsubscribe) are not tracked
        return match.group(0)
    return f'href="{tracking.click_url(message_token, url)}"'


TEXT_LINK = re.compile(r"\((https?://[^\s)]+)\)")


def _track_text_links(text: str, message_token: str) -> str:
    def tracked(m: re.Match) -> str:
        url = m.group(1)
        return (
            m.group(0)
            if url.startswith(settings.PUBLIC_URL)
            else (f"({tracking.click_url(message_token, url)})")
        )

    return TEXT_LINK.sub(tracked, text)


def _pixel(url: str) -> str:
    return f'<img src="{url}" width="1" height="1" alt="" style="display:none">'


def _with_pixel(html: str, url: str) -> str:
    pixel = _pixel(url)
    at = html.lower().rfind("</body>")
    return html + pixel if at < 0 else html[:at] + pixel + html[at:]


def without_pixel(html: str, message_token: str) -> str:
    """A sent message's HTML without its open pixel: staff reading it must not count as the
    recipient opening it."""
    return html.replace(_pixel(tracking.open_url(message_token)), "")


class _TextMaker(HTMLParser):
    """HTML -> readable plain text: paragraphs and breaks become newlines, links "text (url)",
    list items get a dash, scripts/styles vanish. Template tags pass through as text."""

    BLOCK = {"p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "section"}

    def __init__(self) -> None:
        # Character references are ours to decode: a brace written as `&#123;` (generated copy is
        # escaped so) must stay text in the plain-text *template*, not become template code.
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self.hrefs: list[str | None] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in self.BLOCK:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "a":
            self.hrefs.append(dict(attrs).get("href"))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n\n")
        elif tag == "a" and self.hrefs:
            href = self.hrefs.pop()
            if href and not href.startswith(("#", "mailto:")):
                self.parts.append(f" ({href})")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))

    def handle_charref(self, name: str) -> None:
        self._reference(f"&#{name};")

    def handle_entityref(self, name: str) -> None:
        self._reference(f"&{name};")

    def _reference(self, reference: str) -> None:
        if not self.skip:
            char = unescape(reference)
            self.parts.append(" " if char.isspace() else literal(char))


def html_to_text(html: str) -> str:
    maker = _TextMaker()
    maker.feed(html or "")
    maker.close()
    text = "".join(maker.parts)
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


CUSTOMER_FIELDS = ("first_name", "last_name", "email", "phone", "country", "locale", "time_zone",
                   "attributes")  # fmt: skip


def customer_record(customer) -> dict:
    """The recipient's own fields, as a template sees them (`{{ customer.first_name }}`)."""
    fields = {name: getattr(customer, name) for name in CUSTOMER_FIELDS}
    fields["email"] = fields["email"] or ""
    fields["attributes"] = fields["attributes"] if isinstance(fields["attributes"], dict) else {}
    fields["name"] = f"{customer.first_name} {customer.last_name}".strip()
    return fields


def recipient_context(
    customer, compiled: CompiledVariant, *, trigger: dict | None = None, **links: str
) -> dict:
    """Everything a variant may show its recipient, as plain data: their fields, the products
    its `{% recommend %}` tags will list (looked up here, only when a template asks), the chat
    link when a template mentions it, `links` (unsubscribe_url, preferences_url) and, in a
    journey's message, `trigger`: what started the enrolment (the event's type and properties,
    e.g. a cart's items)."""
    fields = customer_record(customer)
    record = Record(fields, label=fields["name"] or fields["email"] or "")
    context = {"customer": record, "first_name": fields["first_name"], **links}
    if trigger is not None:
        context["trigger"] = trigger
    if compiled.recommendations:
        context[RECOMMENDATIONS] = _recommendations(customer, compiled.recommendations)
    if compiled.chat_url:
        context["chat_url"] = _chat_url(customer)
    return {key: plain(value) for key, value in context.items()}


def _recommendations(customer, count: int) -> list[dict]:
    if not customer.pk:
        return []
    return selectors.recommendations_for(customer=customer, limit=count)["results"]


def _chat_url(customer) -> str:
    return customer_chat_url(customer) if customer.pk and customer.workspace_id else ""
