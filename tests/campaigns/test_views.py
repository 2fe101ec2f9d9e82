"""The public pages reached from messages (campaigns/views.py), posted as a browser would."""

from urllib.parse import urlsplit

import pytest

from campaigns import tracking
from campaigns.models import Message
from campaigns.services.recipients import build_ledger
from crm.models import Consent
from tests.campaigns.factories import make_audience, make_campaign

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_the_preference_page_cannot_resubscribe_a_bounced_or_complained_address(
    client, workspace, status
):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    build_ledger(campaign=campaign)
    message = Message.objects.get(campaign=campaign)
    Consent.objects.filter(customer=message.customer, channel="email").update(status=status)
    page = urlsplit(tracking.preferences_url(message.token.hex)).path
    shown = client.get(page)
    assert b'name="email" disabled' in shown.content and b"Paused" in shown.content
    # A forged form ticks the box anyway; the state stays, other channels still change.
    saved = client.post(page, {"email": "on", "sms": "on"})
    assert saved.status_code == 200
    statuses = dict(
        Consent.objects.filter(customer=message.customer).values_list("channel", "status")
    )
    assert statuses == {"email": status, "sms": "subscribed"}
    # Unticking it does not turn the bounce or complaint into a plain unsubscribe either.
    client.post(page, {"sms": "on"})
    assert Consent.objects.get(customer=message.customer, channel="email").status == status


@pytest.mark.parametrize("status", ["bounced", "complained"])
@pytest.mark.parametrize(
    "unsubscribe", [{}, {"List-Unsubscribe": "One-Click"}], ids=["unsubscribe page", "one-click"]
)
def test_no_public_page_replaces_a_bounce_or_complaint(client, workspace, status, unsubscribe):
    """The outside tester's sequence: an integration records the bounce, then the unsubscribe
    page (or a mail provider's one-click POST) turned it into "unsubscribed", which the
    preference page then turned into "subscribed"."""
    from tests.crm.factories import client_for

    campaign = make_campaign(workspace, make_audience(workspace, 1))
    build_ledger(campaign=campaign)
    message = Message.objects.get(campaign=campaign)
    patched = client_for(workspace).patch(
        f"/api/v1/customers/{message.customer_id}", {"consent": {"email": status}}, format="json"
    )
    assert patched.status_code == 200, patched.content

    def email_status() -> str:
        return Consent.objects.get(customer=message.customer, channel="email").status

    assert email_status() == status
    unsubscribed = client.post(
        urlsplit(tracking.unsubscribe_url(message.token.hex)).path, unsubscribe
    )
    assert unsubscribed.status_code == 200
    assert email_status() == status
    page = urlsplit(tracking.preferences_url(message.token.hex)).path
    assert client.post(page, {"email": "on"}).status_code == 200
    assert email_status() == status
    client.post(page, {})  # nothing ticked: still not a plain unsubscribe
    assert email_status() == status
