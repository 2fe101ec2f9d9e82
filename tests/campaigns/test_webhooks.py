"""campaigns.services.webhooks: outbound webhooks signed, retried after a failure and logged,
against a real local HTTP server."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from campaigns.models import (
    Message,
    WebhookDelivery,
    WebhookEndpoint,
)
from campaigns.services.results import campaign_stats
from campaigns.services.webhooks import deliver_due
from crm.models import Event
from tests.campaigns.factories import sent_campaign

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_webhooks_are_signed_retried_and_logged(workspace, settings, own_redis):
    # own_redis: the delivery run queued on commit goes to a broker no worker reads, so this
    # test's own deliver_due() calls make the attempts.
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
        Event.objects.create(
            workspace=workspace,
            customer_id=message.customer_id,
            type="purchase",
            occurred_at=timezone.now(),
            properties={"total": "5.00"},
        )
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
