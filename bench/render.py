"""What the template fence costs: one message rendered in the sandbox vs Django's plain engine.

    .venv/bin/python bench/render.py

Ours: `CompiledVariant.render_for` — plain-data context (a read-only record of the recipient),
allow-listed tags, every piece of output and every filter result charged to the message's
budget, links tracked, open pixel. Anchor, in the same run: the same subject, HTML and text
templates compiled by a plain `django.template.Engine` and rendered from the model object, links
tracked the same way (what rendering did before the fence). Best of 15 rounds of 500 messages
each, to keep other work on the two cores out of the figure. Also: how quickly an over-budget
template (the 3,000 x 3,000 loop of the outside review) is stopped. No database: the customer is
an unsaved model object. Writes bench/results/render.json.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
os.environ.setdefault("MARKETING_AI_ENV", "development")

import django  # noqa: E402

django.setup()

from django.template import Context, Engine  # noqa: E402

from bench import services  # noqa: E402
from campaigns import rendering  # noqa: E402
from crm.models import Customer  # noqa: E402

SUBJECT = "Hello {{ customer.first_name }}, the winter sale"
HTML = (
    "<html><body><h1>Hello {{ customer.first_name|capfirst }}</h1>"
    '<p>Our <a href="https://shop.example.com/winter">winter collection</a> is in, and '
    '<a href="https://shop.example.com/sale?src=mail">the sale</a> ends Sunday.</p>'
    "{% for i in '12345'|make_list %}<p>{{ i }}. {{ customer.last_name|upper }}</p>{% endfor %}"
    "{% if customer.country == 'GB' %}<p>Free UK delivery.</p>{% endif %}</body></html>"
)
ROUNDS, MESSAGES = 15, 500
TOKEN = "ab" * 16


def best_per_message(render) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(MESSAGES):
            render()
        best = min(best, (time.perf_counter() - started) / MESSAGES)
    return best * 1e6  # microseconds


def main() -> None:
    customer = Customer(
        first_name="ann",
        last_name="Lee",
        email="ann@example.com",
        country="GB",
        attributes={"tier": "gold"},
    )
    compiled = rendering.compile_variant(
        subject=SUBJECT, preheader="", body_html=HTML, body_text=""
    )
    links = {"unsubscribe_url": "https://m.example/u/x", "preferences_url": "https://m.example/p/x"}

    def ours() -> None:
        compiled.render_for(customer, message_token=TOKEN, **links)

    plain = Engine(autoescape=True, string_if_invalid="")
    html_source = rendering._with_footer(HTML)
    anchor_templates = (
        plain.from_string(SUBJECT),
        plain.from_string(html_source),
        plain.from_string(rendering.html_to_text(html_source)),
    )

    def anchor() -> None:
        context = {"customer": customer, "first_name": customer.first_name, **links}
        subject, html, text = anchor_templates
        subject.render(Context(context, autoescape=False))
        out = html.render(Context(context))
        out = rendering.LINK.sub(lambda m: rendering._tracked_href(m, TOKEN), out)
        rendering._with_pixel(out, rendering.tracking.open_url(TOKEN))
        rendering._track_text_links(text.render(Context(context, autoescape=False)), TOKEN)

    ours_us, anchor_us = best_per_message(ours), best_per_message(anchor)

    big = "x" * 3000
    loop = rendering.compile_variant(
        subject="",
        preheader="",
        body_text="",
        body_html=f'{{% for a in "{big}"|make_list %}}{{% for b in "{big}"|make_list %}}'
        "{% endfor %}{% endfor %}",
    )
    started = time.perf_counter()
    try:
        loop.render_for(customer, **links)
        stopped = "no"
    except rendering.RenderLimit:
        stopped = "yes"
    stop_ms = (time.perf_counter() - started) * 1e3
    plain_loop = plain.from_string(loop.html.source)
    started = time.perf_counter()
    plain_loop.render(Context({}))
    plain_loop_ms = (time.perf_counter() - started) * 1e3

    services.print_table(
        "One message rendered (best of 15 x 500)",
        [
            (
                "per message, us",
                f"{ours_us:.0f}",
                f"{anchor_us:.0f}",
                f"{ours_us / anchor_us:.2f}x",
            ),
            (
                "3,000 x 3,000 loop, ms",
                f"{stop_ms:.1f} (stopped: {stopped})",
                f"{plain_loop_ms:.0f}",
                f"{plain_loop_ms / stop_ms:.0f}x sooner",
            ),
        ],
    )
    print(
        services.write_results(
            "render",
            {
                "sandbox_us_per_message": round(ours_us, 1),
                "plain_engine_us_per_message": round(anchor_us, 1),
                "sandbox_over_plain": round(ours_us / anchor_us, 3),
                "loop_3000x3000_stopped_ms": round(stop_ms, 2),
                "loop_3000x3000_plain_ms": round(plain_loop_ms, 1),
            },
        )
    )


if __name__ == "__main__":
    main()
