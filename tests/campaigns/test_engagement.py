"""campaigns.services.engagement, through the tracking pages: opens and clicks recorded (a click
redirects only to the signed URL), one-click unsubscribe withdrawing consent and telling
integrations, the preference page."""

from urllib.parse import urlsplit

import pytest

from campaigns import tracking
from campaigns.models import Message, WebhookDelivery, WebhookEndpoint
from crm.models import Consent, Event
from tests.campaigns.factories import sent_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def path(url: str) -> str:
    return urlsplit(url).path


def test_open_click_and_redirect_only_to_the_signed_url(client, workspace):
    campaign = sent_campaign(workspace, n=2)
    message = Message.objects.filter(campaign=campaign, state="sent").first()
    token = message.token.hex
    assert client.get(path(tracking.open_url(token))).status_code == 200
    link = tracking.click_url(token, "https://shop.example.com/new?a=1&b=2")
    response = client.get(path(link))
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/new?a=1&b=2"
    message.refresh_from_db()
    assert message.opened_at and message.clicked_at
    assert Event.objects.filter(customer=message.customer, type="email_click").count() == 1
    # A token re-pointed at another site, or altered, is refused.
    signed = path(link).rsplit("/", 1)[1]
    value, signature = signed.rsplit(":", 1)
    forged = tracking.click_url(token, "https://evil.example.net/").rsplit("/", 1)[1]
    forged_value = forged.rsplit(":", 1)[0]
    assert client.get(f"/t/c/{forged_value}:{signature}").status_code == 400
    assert client.get(f"/t/c/{value}:{signature[:-2]}xx").status_code == 400
    javascript = tracking.click_url(token, "javascript:alert(1)")
    assert client.get(path(javascript)).status_code == 400
    assert client.get(path(tracking.open_url(token))[:-8] + "AAAA.gif").status_code == 404


def test_one_click_unsubscribe_withdraws_consent_and_tells_integrations(client, workspace):
    WebhookEndpoint.objects.create(
        workspace=workspace,
        url="http://127.0.0.1:9/hook",
        secret="s3cret",
        events=["customer.unsubscribed"],
    )
    campaign = sent_campaign(workspace, n=2)
    message = Message.objects.filter(campaign=campaign, state="sent").first()
    url = path(tracking.unsubscribe_url(message.token.hex))
    assert b"Unsubscribe" in client.get(url).content
    consent = Consent.objects.get(customer=message.customer, channel="email")
    assert consent.status == "subscribed"  # a GET (link scanners) changes nothing
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    consent.refresh_from_db()
    assert consent.status == "unsubscribed" and "one-click" in consent.source
    delivery = WebhookDelivery.objects.get(event="customer.unsubscribed")
    assert delivery.payload["data"]["customer"] == message.customer_id
    page = path(tracking.preferences_url(message.token.hex))
    client.post(page, {"sms": "on"})
    statuses = dict(
        Consent.objects.filter(customer=message.customer).values_list("channel", "status")
    )
    assert statuses == {"email": "unsubscribed", "sms": "subscribed"}
