"""campaigns.channels.http: SMS and webhook channels through a real local HTTP endpoint: signed,
idempotent, retried."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from campaigns.models import Campaign, Message, Variant
from campaigns.services.delivery import deliver
from campaigns.services.lifecycle import CampaignError
from campaigns.services.recipients import build_ledger
from campaigns.services.variants import variant_approve
from crm.models import Consent, Customer, Segment, SegmentMembership

pytestmark = pytest.mark.django_db(transaction=True)


class Gateway(BaseHTTPRequestHandler):
    """An SMS gateway that answers 429 to the first request of each message id."""

    seen: dict = {}
    bodies: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers["Idempotency-Key"]
        cls = type(self)
        cls.seen[key] = cls.seen.get(key, 0) + 1
        if cls.seen[key] == 1:
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        cls.bodies.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"id": f"sms-{len(cls.bodies)}"}).encode())

    def log_message(self, *args):
        pass


def test_sms_goes_through_the_gateway_signed_once_each_after_a_429(workspace, settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    Gateway.seen, Gateway.bodies = {}, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.CAMPAIGN_HTTP_CHANNELS = {
        "sms": {"url": f"http://127.0.0.1:{server.server_port}/sms", "secret": "gw-secret"}
    }
    settings.CAMPAIGN_RATE_LIMITS = {"sms": 0}
    # The gateway is local: outbound calls refuse it unless the operator allows it.
    settings.WEBHOOK_ALLOW_HTTP = settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.CAMPAIGN_RETRY_BASE_SECONDS = 0.0
    try:
        people = Customer.objects.bulk_create(
            [
                Customer(workspace=workspace, phone=f"+4470000000{i}", first_name=f"P{i}")
                for i in range(5)
            ]
            + [Customer(workspace=workspace, first_name="no phone")]
        )
        for person in people:
            Consent.objects.create(
                customer=person, channel="sms", status="subscribed", updated_at=person.created_at
            )
        segment = Segment.objects.create(workspace=workspace, name="texts", kind="static")
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment=segment, customer=p) for p in people]
        )
        campaign = Campaign.objects.create(
            workspace=workspace, name="sms", channel="sms", status="sending"
        )
        campaign.include_segments.add(segment)
        long = Variant.objects.create(campaign=campaign, name="B", body_text="x" * 161)
        with pytest.raises(CampaignError):
            variant_approve(variant=long)
        variant = Variant.objects.create(
            campaign=campaign, name="A", body_text="Hi {{ first_name }}, 20% off today"
        )
        variant_approve(variant=variant)
        build_ledger(campaign=campaign)
        for _ in range(5):
            deliver(campaign_id=campaign.pk, budget_seconds=10)
        sent = Message.objects.filter(campaign=campaign, state="sent")
        assert sent.count() == 5
        assert (
            Message.objects.get(campaign=campaign, customer=people[-1]).reason == "no sms address"
        )
        assert sorted(json.loads(b)["text"] for _, b in Gateway.bodies) == sorted(
            f"Hi P{i}, 20% off today" for i in range(5)
        )
        assert set(Gateway.seen.values()) == {2}  # 429 once, then accepted once
        headers, body = Gateway.bodies[0]
        expected = "sha256=" + hmac.new(b"gw-secret", body, hashlib.sha256).hexdigest()
        assert headers["X-Marketing-AI-Signature"] == expected
        assert {m.provider_id for m in sent} == {f"sms-{i}" for i in range(1, 6)}
    finally:
        server.shutdown()
