"""Signed chat links: the handle our e-mails carry ({{ chat_url }}) that opens the support chat
as the customer it names, so the assistant may speak about their orders."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

from crm.models import Customer

IDENTITY_SALT = "marketing_ai.chat.customer"


def customer_chat_token(customer: Customer) -> str:
    """A signed handle for links in our e-mails: opening the chat with it identifies them."""
    return signing.dumps({"w": customer.workspace_id, "c": customer.pk}, salt=IDENTITY_SALT)


def customer_chat_url(customer: Customer) -> str:
    """The public chat page, signed in as `customer` (PUBLIC_URL + /chat/<workspace>/?c=...)."""
    path = reverse("chat", args=[customer.workspace.slug])
    return f"{settings.PUBLIC_URL}{path}?c={customer_chat_token(customer)}"


def customer_from_token(token: str) -> Customer | None:
    """The customer a signed chat link names, or None (forged, another salt, or older than
    CHAT_LINK_MAX_AGE seconds: the link's lifetime is the identity's)."""
    max_age = getattr(settings, "CHAT_LINK_MAX_AGE", 60 * 60 * 24 * 60)
    try:
        data = signing.loads(token, salt=IDENTITY_SALT, max_age=max_age)
    except signing.BadSignature:
        return None
    return Customer.objects.filter(
        pk=data.get("c"), workspace_id=data.get("w"), erased_at__isnull=True
    ).first()
