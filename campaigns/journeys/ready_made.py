"""Ready-made journeys, installed in one step: `python manage.py journey_template NAME
--workspace SLUG [--set key=value ...] [--publish]` or POST /api/v1/journeys/templates/<name>.

Each one writes its messages as journey campaigns with an approved first variant (copy a
marketer edits before publishing, or keeps), and the journey's definition with the settings
given; published, it runs at once.

- welcome: three e-mails over a week after a `signed_up` event; ends at the first purchase.
- abandoned_cart: a `cart_updated` or `checkout_started` event (properties.items =
  [{"sku", "quantity"}]) and no purchase within `wait` (4h): an e-mail naming the cart's
  products and recommending others; a reminder after `reminder` (24h) more; one enrolment per
  customer at a time; a purchase (an order through the API, or a `purchase` event) ends it.
- post_purchase: seven days (`after`) after an order, recommendations, unless they bought again.
- win_back: a customer entering "Churn risk over 0.6" (a rules segment on the churn model's
  score, `risk`), an offer; a last call after `wait` (14d) unless they bought; a purchase ends it.
"""

from dataclasses import dataclass

from django.db import transaction

from campaigns.journeys import graph, services
from campaigns.journeys.models import Journey
from campaigns.models import Campaign, Variant
from campaigns.services.variants import variant_approve
from crm.models import Segment, Workspace
from crm.services.segments import segment_save

FOOTER = '<p style="font-size:12px"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
CART_LINES = (
    "{% for item in trigger.products %}<li>{{ item.quantity }} &times; {{ item.name }}</li>"
    "{% endfor %}"
)
PICKS = (
    "{% recommend customer 3 as picks %}{% if picks %}<p>You might also like:</p><ul>"
    "{% for p in picks %}<li>{{ p.name }}</li>{% endfor %}</ul>{% endif %}"
)


@dataclass(frozen=True)
class Message:
    key: str
    subject: str
    body: str


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    settings: dict  # name -> default
    messages: tuple[Message, ...]

    def definition(self, values: dict, campaigns: dict[str, int]) -> dict:
        return BUILDERS[self.name](values, campaigns)


def _welcome(values: dict, campaigns: dict[str, int]) -> dict:
    return {
        "trigger": {"type": "event", "event": values["event"]},
        "exit_on": ["purchase"],
        "reentry": {"policy": "once"},
        "start": "hello",
        "steps": {
            "hello": {"type": "send", "campaign": campaigns["hello"], "next": "pause_1"},
            "pause_1": {"type": "delay", "duration": values["gap"], "next": "tips"},
            "tips": {"type": "send", "campaign": campaigns["tips"], "next": "pause_2"},
            "pause_2": {"type": "delay", "duration": values["gap"], "next": "offer"},
            "offer": {"type": "send", "campaign": campaigns["offer"], "next": "done"},
            "done": {"type": "exit"},
        },
    }


def _abandoned_cart(values: dict, campaigns: dict[str, int]) -> dict:
    return {
        "trigger": {"type": "event", "events": ["cart_updated", "checkout_started"]},
        "exit_on": ["purchase"],
        "reentry": {"policy": "not_inside"},
        "start": "wait",
        "steps": {
            "wait": {"type": "wait_event", "event": "purchase", "timeout": values["wait"],
                     "yes": "bought", "no": "remind"},
            "remind": {"type": "send", "campaign": campaigns["remind"], "next": "wait_more"},
            "wait_more": {"type": "wait_event", "event": "purchase",
                          "timeout": values["reminder"], "yes": "bought", "no": "last_call"},
            "last_call": {"type": "send", "campaign": campaigns["last_call"], "next": "done"},
            "bought": {"type": "exit"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


def _post_purchase(values: dict, campaigns: dict[str, int]) -> dict:
    return {
        "trigger": {"type": "event", "event": "purchase"},
        "reentry": {"policy": "not_inside"},
        "start": "wait",
        "steps": {
            "wait": {"type": "wait_event", "event": "purchase", "timeout": values["after"],
                     "yes": "done", "no": "picks"},
            "picks": {"type": "send", "campaign": campaigns["picks"], "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


def _win_back(values: dict, campaigns: dict[str, int]) -> dict:
    return {
        "trigger": {"type": "segment", "segment": campaigns["segment"], "on": "enter"},
        "exit_on": ["purchase"],
        "reentry": {"policy": "after_days", "days": 90},
        "start": "offer",
        "steps": {
            "offer": {"type": "send", "campaign": campaigns["offer"], "next": "wait"},
            "wait": {"type": "wait_event", "event": "purchase", "timeout": values["wait"],
                     "yes": "done", "no": "last_call"},
            "last_call": {"type": "send", "campaign": campaigns["last_call"], "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


BUILDERS = {
    "welcome": _welcome,
    "abandoned_cart": _abandoned_cart,
    "post_purchase": _post_purchase,
    "win_back": _win_back,
}

TEMPLATES = {
    t.name: t
    for t in (
        Template(
            "welcome",
            "Welcome series",
            {"event": "signed_up", "gap": "3d"},
            (
                Message("hello", "Welcome, {{ first_name|default:'there' }}",
                        "<p>Thanks for joining us.</p>" + PICKS + FOOTER),
                Message("tips", "Getting the most from your order",
                        "<p>A few things our customers love.</p>" + PICKS + FOOTER),
                Message("offer", "Something for your first order",
                        "<p>Your first order ships free this week.</p>" + FOOTER),
            ),
        ),
        Template(
            "abandoned_cart",
            "Abandoned cart",
            {"wait": "4h", "reminder": "24h"},
            (
                Message("remind", "You left something in your cart",
                        "<p>Still thinking it over?</p><ul>" + CART_LINES + "</ul>" + PICKS
                        + FOOTER),
                Message("last_call", "Your cart is waiting",
                        "<p>Your cart is still here:</p><ul>" + CART_LINES + "</ul>" + FOOTER),
            ),
        ),
        Template(
            "win_back",
            "Win back",
            {"risk": "0.6", "wait": "14d"},
            (
                Message("offer", "We miss you, {{ first_name|default:'there' }}",
                        "<p>It has been a while. Here is 10% off your next order.</p>" + PICKS
                        + FOOTER),
                Message("last_call", "Your 10% off ends soon",
                        "<p>Your offer is still waiting for you.</p>" + FOOTER),
            ),
        ),
        Template(
            "post_purchase",
            "After a purchase",
            {"after": "7d"},
            (
                Message("picks", "Picked for you, {{ first_name|default:'there' }}",
                        "<p>Thanks again for your order. You might like these:</p>" + PICKS
                        + FOOTER),
            ),
        ),
    )
}  # fmt: skip


class TemplateError(services.JourneyError):
    pass


def settings_for(template: Template, given: dict[str, str]) -> dict:
    unknown = sorted(set(given) - set(template.settings))
    if unknown:
        raise TemplateError(
            {
                name: [f"not a setting of {template.name} ({', '.join(template.settings)})"]
                for name in unknown
            }
        )
    values = {**template.settings, **given}
    errors = {}
    if "risk" in values:
        try:
            if not 0 < float(values["risk"]) < 1:
                raise ValueError
        except ValueError:
            errors["risk"] = ["a churn risk between 0 and 1, e.g. 0.6"]
    for name, value in values.items():
        if name in ("wait", "reminder", "after", "gap"):
            try:
                if graph.seconds(value) <= 0:
                    raise ValueError("longer than 0 seconds")
            except ValueError as exc:
                errors[name] = [str(exc)]
    if errors:
        raise TemplateError(errors)
    return values


@transaction.atomic
def install(
    *, workspace: Workspace, name: str, given: dict[str, str] | None = None, publish: bool = False
) -> Journey:
    """Creates the template's messages and journey in `workspace` (named after the template,
    numbered if the name is taken); publishes it when asked. Raises TemplateError."""
    template = TEMPLATES.get(name)
    if template is None:
        raise TemplateError({"name": [f"one of {', '.join(TEMPLATES)}"]})
    values = settings_for(template, given or {})
    title = _free_name(workspace, template.title)
    campaigns = {}
    if name == "win_back":  # who it starts on: customers whose churn risk passes the setting
        segment = Segment.objects.filter(
            workspace=workspace, name=f"Churn risk over {values['risk']}"
        ).first()
        campaigns["segment"] = (segment or segment_save(
            workspace=workspace, name=f"Churn risk over {values['risk']}",
            rules={"score": "churn_risk", "op": "gt", "value": float(values["risk"])},
            description="customers the churn model rates likely to stop buying (win_back)",
        )).pk  # fmt: skip
    for message in template.messages:
        campaign = Campaign.objects.create(
            workspace=workspace,
            name=_free_name(workspace, f"{title}: {message.key}", Campaign),
            kind=Campaign.Kind.JOURNEY,
            consent_rule=Campaign.ConsentRule.OPT_IN,
        )
        variant = Variant.objects.create(
            campaign=campaign, name="A", subject=message.subject, body_html=message.body
        )
        variant_approve(variant=variant)
        campaigns[message.key] = campaign.pk
    journey = services.journey_create(
        workspace=workspace, name=title, definition=template.definition(values, campaigns)
    )
    if publish:
        services.journey_publish(journey=journey)
        journey.refresh_from_db()
    return journey


def _free_name(workspace: Workspace, wanted: str, model=Journey) -> str:
    name, n = wanted, 1
    while model.objects.filter(workspace=workspace, name=name).exists():
        n += 1
        name = f"{wanted} ({n})"
    return name
