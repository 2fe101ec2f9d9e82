"""What the journey tests share: a journey's message (a campaign of kind journey) whose
approved variant lists the cart that started the enrolment."""

from campaigns.models import Campaign, Variant
from campaigns.services.variants import variant_approve

CART = (
    "<p>Still thinking it over?</p><ul>{% for item in trigger.properties.items %}"
    "<li>{{ item.quantity }} x {{ item.sku }}</li>{% endfor %}</ul>"
)


def journey_message(workspace) -> Campaign:
    campaign = Campaign.objects.create(
        workspace=workspace, name="Cart reminder", kind=Campaign.Kind.JOURNEY,
        consent_rule=Campaign.ConsentRule.NOT_OPTED_OUT, from_email="shop@example.com",
    )  # fmt: skip
    variant = Variant.objects.create(
        campaign=campaign, name="A", subject="Your cart", body_html=CART
    )
    variant_approve(variant=variant)
    return campaign
