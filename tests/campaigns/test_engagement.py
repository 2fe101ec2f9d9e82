"""Tracking pages, conversions, results with intervals, A/B winner, outbound webhooks."""

import hashlib
import hmac
import json
import threading
from datetime import datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns import rendering, schedule, tracking
from campaigns.models import Campaign, Message, WebhookDelivery, WebhookEndpoint
from campaigns.services.abtest import ab_decide_due
from campaigns.services.recipients import build_ledger
from campaigns.services.results import campaign_stats
from campaigns.services.webhooks import deliver_due
from crm.models import Consent, Event
from tests.campaigns.factories import make_audience, make_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def sent_campaign(workspace, n=20, **fields) -> Campaign:
    campaign = make_campaign(workspace, make_audience(workspace, n), **fields)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    build_ledger(campaign=campaign)
    Message.objects.filter(campaign=campaign, state="queued").update(
        state="sent", sent_at=timezone.now() - timedelta(hours=1)
    )
    return campaign


def path(url: str) -> str:
    return urlsplit(url).path


def test_rendered_email_has_tracked_links_pixel_and_unsubscribe(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    message_token = "cd" * 16
    variant = campaign.variants.get()
    customer = campaign.include_segments.get().memberships.get().customer
    rendered = rendering.compiled(variant).render_for(
        customer,
        unsubscribe_url=tracking.unsubscribe_url(message_token),
        preferences_url=tracking.preferences_url(message_token),
        message_token=message_token,
    )
    assert rendered.subject == f"Variant 0: for {customer.first_name}"
    assert "https://shop.example.com" not in rendered.html  # every link goes through /t/c/
    assert "/t/c/" in rendered.html and "/t/o/" in rendered.html and "/u/" in rendered.html
    assert "new collection (http" in rendered.text and "Unsubscribe (http" in rendered.text


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
    WebhookEndpoint.objects.create(workspace=workspace, url="http://127.0.0.1:9/hook",
                                   secret="s3cret", events=["customer.unsubscribed"])  # fmt: skip
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


def test_conversions_and_lift_over_the_holdout(workspace):
    campaign = sent_campaign(workspace, n=600, holdout_percent=30, seed=5, attribution_days=3)
    treated = list(Message.objects.filter(campaign=campaign, holdout=False, state="sent"))
    control = list(Message.objects.filter(campaign=campaign, holdout=True))
    now = timezone.now()
    buyers = treated[: len(treated) // 5] + control[: len(control) // 10]
    late = treated[-3:]  # bought after the window: not a conversion
    Event.objects.bulk_create(
        [Event(workspace=workspace, customer_id=m.customer_id, type="purchase", occurred_at=now,
               properties={"total": "20.00"}) for m in buyers]
        + [Event(workspace=workspace, customer_id=m.customer_id, type="purchase",
                 occurred_at=now + timedelta(days=5), properties={"total": "9.00"}) for m in late]
    )  # fmt: skip
    Message.objects.filter(pk__in=[m.pk for m in control]).update(send_at=now - timedelta(hours=1))
    stats = campaign_stats(campaign=campaign)
    t_rate = (len(treated) // 5) / len(treated)
    c_rate = (len(control) // 10) / len(control)
    assert stats["treated"]["conversions"]["rate"] == pytest.approx(t_rate)
    assert stats["holdout"]["conversions"]["rate"] == pytest.approx(c_rate)
    lift = stats["lift"]
    assert lift["conversion_rate"] == pytest.approx(t_rate - c_rate)
    low, high = lift["conversion_rate_ci95"]
    assert low < t_rate - c_rate < high and low > 0  # a real 10-point lift on 600 is significant
    assert stats["treated"]["revenue"] == pytest.approx(20.0 * (len(treated) // 5))
    assert stats["variants"][0]["conversions"]["count"] == len(treated) // 5
    assert campaign_stats(campaign=campaign)["lift"] == lift  # attribution is idempotent


def test_ab_test_sends_the_winner_to_the_rest(workspace):
    campaign = make_campaign(
        workspace,
        make_audience(workspace, 300),
        variants=2,
        ab_test_percent=30,
        ab_metric="click",
        ab_wait_hours=0,
        seed=9,
    )
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    counts = build_ledger(campaign=campaign)
    assert 50 < counts["ab_test"] < 130
    rest = Message.objects.filter(campaign=campaign, ab_test=False, holdout=False)
    assert not rest.filter(variant__isnull=False).exists()
    test = Message.objects.filter(campaign=campaign, ab_test=True)
    test.update(state="sent", sent_at=timezone.now() - timedelta(minutes=5))
    b = campaign.variants.get(name="B")
    test.filter(variant=b).update(clicked_at=timezone.now())
    assert ab_decide_due(campaign_id=campaign.pk, now=timezone.now())
    campaign.refresh_from_db()
    assert campaign.winner == b and campaign.ab_result["winner"] == "B"
    assert set(rest.values_list("variant", flat=True)) == {b.pk}


def test_local_time_sends_and_quiet_hours():
    now = datetime(2026, 6, 1, 6, 0, tzinfo=ZoneInfo("UTC"))
    kw = {"timing": "local", "now": now, "local_date": now.date(), "local_time": time(10, 0)}
    london = schedule.due_time(tz=ZoneInfo("Europe/London"), **kw)
    new_york = schedule.due_time(tz=ZoneInfo("America/New_York"), **kw)
    assert london == datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 BST
    assert new_york == datetime(2026, 6, 1, 14, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 EDT
    tokyo = schedule.due_time(tz=ZoneInfo("Asia/Tokyo"), **kw)  # 10:00 JST passed: send now
    assert tokyo == now
    late = schedule.due_time(timing="now", tz=ZoneInfo("Europe/London"),
                             now=datetime(2026, 6, 1, 22, 30, tzinfo=ZoneInfo("UTC")),
                             quiet_start=time(21, 0), quiet_end=time(8, 0))  # fmt: skip
    assert late == datetime(2026, 6, 2, 7, 0, tzinfo=ZoneInfo("UTC"))  # 08:00 BST next day


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
        else:
            cls.received.append((dict(self.headers), body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_signed_retried_and_logged(workspace, settings):
    # The receiver is local: outbound calls refuse it unless the operator allows it.
    settings.WEBHOOK_ALLOW_HTTP = settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received, _Receiver.fail_first = [], 1
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        WebhookEndpoint.objects.create(workspace=workspace, url=url, secret="topsecret")
        campaign = sent_campaign(workspace, n=1)
        message = Message.objects.get(campaign=campaign)
        Event.objects.create(workspace=workspace, customer_id=message.customer_id, type="purchase",
                             occurred_at=timezone.now(), properties={"total": "5.00"})  # fmt: skip
        campaign_stats(campaign=campaign)  # attributes the conversion -> message.converted
        assert deliver_due() == {"delivered": 0, "retrying": 1, "failed": 0}
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == 1 and delivery.status_code == 503
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        assert deliver_due()["delivered"] == 1
        headers, body = _Receiver.received[0]
        expected = "sha256=" + hmac.new(b"topsecret", body, hashlib.sha256).hexdigest()
        assert headers["X-Marketing-AI-Signature"] == expected
        payload = json.loads(body)
        assert payload["type"] == "message.converted" and payload["data"]["revenue"] == "5.00"
    finally:
        server.shutdown()


def test_messages_are_in_the_export_and_timeline_and_erasure_blanks_them(workspace):
    from crm import selectors
    from crm.services.privacy import privacy_erase, privacy_export

    campaign = sent_campaign(workspace, n=3)
    message = Message.objects.filter(campaign=campaign, state="sent").first()
    customer = message.customer
    exported = privacy_export(customer=customer, actor="test")["messages"]
    assert exported[0]["address"] == customer.email and exported[0]["state"] == "sent"
    timeline = selectors.customer_timeline(customer=customer)
    assert any(item["kind"] == "message" and item["campaign__name"] == campaign.name
               for item in timeline)  # fmt: skip
    audit = privacy_erase(customer=customer, actor="test")
    assert audit.details["messages_anonymised"] == 1
    message.refresh_from_db()
    assert message.address == "" and message.state == "sent"  # totals unchanged, person gone


def test_variant_renders_the_customers_recommendations(workspace, sink_factory, smtp_settings):
    from campaigns.services.delivery import deliver
    from crm.models import Product, Recommendation

    lamp = Product.objects.create(workspace=workspace, sku="L1", name="Brass lamp", price=30)
    mug = Product.objects.create(workspace=workspace, sku="M1", name="Owl mug", price=8)
    gone = Product.objects.create(workspace=workspace, sku="X1", name="Retired vase", active=False)
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    customer = campaign.include_segments.get().memberships.get().customer
    Recommendation.objects.create(
        workspace=workspace,
        customer=customer,
        computed_at=timezone.now(),
        products=[[mug.pk, 0.9], [gone.pk, 0.8], [lamp.pk, 0.7]],
    )
    variant = campaign.variants.get()
    variant.body_html = (
        "<p>Picked for you:</p>{% recommend customer 3 as picks %}"
        "<ul>{% for p in picks %}<li>{{ p.name }}</li>{% endfor %}</ul>"
    )
    variant.save()
    text = rendering.compiled(variant).render_for(customer).text
    assert "- Owl mug" in text and "- Brass lamp" in text and "Retired vase" not in text
    # ... and the same in the message that goes out.
    sink = sink_factory()
    smtp_settings(sink)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    build_ledger(campaign=campaign)
    deliver(campaign_id=campaign.pk, budget_seconds=10)
    assert sink.count() == 1


def test_rate_limit_is_shared_through_redis(settings):
    import time as clock

    from campaigns.ratelimit import RateLimiter

    settings.CAMPAIGN_RATE_LIMITS = {"sms": 20}
    limiter = RateLimiter(channel="sms", workspace_id=987654)
    other = RateLimiter(channel="sms", workspace_id=987654)  # a second worker, same bucket
    started = clock.monotonic()
    for _ in range(30):
        assert limiter.take(clock.monotonic() + 10)
        assert other.take(clock.monotonic() + 10)
    elapsed = clock.monotonic() - started
    assert elapsed > (60 - 20 - 16 * 2) / 20  # 60 sends at 20/s after a 1-second burst
