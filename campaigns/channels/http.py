"""SMS and generic webhook delivery through an HTTP endpoint the operator configures.

The body is JSON; each request carries `Idempotency-Key: <message token>` and an HMAC-SHA256
signature of the body (`X-Marketing-AI-Signature: sha256=<hex>`). A 2xx answer is sent; 408,
429 and 5xx (and timeouts) are retried later (honouring Retry-After); other 4xx fail for good.
An HTTP call cannot be split like SMTP, so the ledger commits after the 2xx: a worker killed in
between repeats the call with the same Idempotency-Key.

The gateway URL goes through campaigns.outbound like a webhook's: public https addresses unless
the operator allows others (WEBHOOK_ALLOW_HTTP, WEBHOOK_ALLOW_PRIVATE_NETWORKS), no redirects,
and the reason logged on the message is the status code, not the gateway's body. A workspace
whose sending settings name its own gateway or endpoint (campaigns.sending) sends there, signed
with its own secret.
"""

import hashlib
import hmac
import json

import requests
from django.conf import settings

from campaigns import outbound
from campaigns.channels import Channel, HandOff, Outcome, Outgoing
from campaigns.sending import config as sending_config
from marketing_ai import sealed

RETRYABLE = {408, 425, 429}


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HttpChannel(Channel):
    setting = ""

    def open(self) -> None:
        config = settings.CAMPAIGN_HTTP_CHANNELS.get(self.kind) or {}
        self.url = config.get("url") or ""
        self.secret = config.get("secret") or ""
        self.timeout = float(config.get("timeout", 10))
        self.session = outbound.session()
        self._endpoints: dict[int | None, tuple[str, str]] = {}

    def close(self) -> None:
        self.session.close()

    def payload(self, outgoing: Outgoing) -> dict:
        return {
            "id": outgoing.token,
            "to": outgoing.address,
            "text": outgoing.text,
            **outgoing.metadata,
        }

    def endpoint(self, workspace_id: int | None) -> tuple[str, str]:
        """(url, secret): the workspace's own endpoint where its sending settings name one,
        else the environment's; looked up once a run."""
        if workspace_id not in self._endpoints:
            own = sending_config.http_endpoint(workspace_id, self.kind)
            self._endpoints[workspace_id] = (
                (own.url, own.secret) if own else (self.url, self.secret)
            )
        return self._endpoints[workspace_id]

    def send(self, outgoing: Outgoing, hand_off: HandOff) -> Outcome:
        try:
            url, secret = self.endpoint(outgoing.workspace_id)
        except sealed.Unsealable as exc:
            return Outcome("retry", f"sending settings: {exc}")
        if not url:
            return Outcome(
                "retry",
                f"no endpoint configured for {self.kind} (CAMPAIGN_{self.kind.upper()}_URL)",
            )
        body = json.dumps(self.payload(outgoing), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": outgoing.token,
            "X-Marketing-AI-Signature": signature(secret, body),
        }
        try:
            response = outbound.post(
                self.session, url, data=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            return Outcome("retry", outbound.failure_reason(exc))
        code = response.status_code
        if 200 <= code < 300:
            provider_id = _provider_id(response)
            hand_off(lambda: None, provider_id)
            return Outcome("sent", provider_id=provider_id)
        reason = outbound.response_reason(response)
        if code in RETRYABLE or code >= 500:
            return Outcome("retry", reason, retry_after=_retry_after(response))
        return Outcome("failed", reason)


def _provider_id(response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("id", ""))[:200] if isinstance(data, dict) else ""


def _retry_after(response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class SmsChannel(HttpChannel):
    kind = "sms"

    def address_of(self, customer) -> str:
        return (customer.phone or "").strip()

    def payload(self, outgoing: Outgoing) -> dict:
        return {"id": outgoing.token, "to": outgoing.address, "text": outgoing.text[:1600]}


class WebhookChannel(HttpChannel):
    kind = "webhook"

    def address_of(self, customer) -> str:
        return str(customer.pk)
