"""Outbound webhooks: an outbox of deliveries written in the same transaction as the change they
report, then posted (signed, retried with backoff) by a worker.

The URL is an integrator's, so every attempt goes through campaigns.outbound (public addresses
only, checked on the address actually connected to, no redirects) and the log keeps the status
code and a short fixed reason, never the answer's body."""

import json
from datetime import timedelta

import requests
from django.db.models import Q
from django.utils import timezone

from campaigns import outbound
from campaigns.channels.http import signature
from campaigns.models import WebhookDelivery, WebhookEndpoint
from crm.signals import conversation_waiting
from workers.services import send_on_commit, task_named

MAX_ATTEMPTS = 8
BACKOFF_SECONDS = (10, 30, 120, 600, 1800, 3600, 7200, 14400)


def endpoints_for(workspace_id: int, event: str) -> list[WebhookEndpoint]:
    return [
        e
        for e in WebhookEndpoint.objects.filter(workspace_id=workspace_id, active=True)
        if e.wants(event)
    ]


def webhook_emit(
    *,
    workspace_id: int,
    event: str,
    data: dict,
    message_id: int | None = None,
    endpoints: list[WebhookEndpoint] | None = None,
    delay: float = 0,
) -> int:
    """Queues `event` for every endpoint that subscribed to it; call inside the transaction that
    makes the change. Returns how many deliveries were queued."""
    endpoints = endpoints_for(workspace_id, event) if endpoints is None else endpoints
    if not endpoints:
        return 0
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=e,
                event=event,
                message_id=message_id,
                payload={"type": event, "created": now.isoformat(), "data": data},
                next_attempt_at=now + timedelta(seconds=delay),
            )
            for e in endpoints
        ]
    )
    if delay <= 0:
        deliveries_soon()
    return len(endpoints)


def deliveries_soon() -> None:
    """Starts a run of the due deliveries once the transaction commits, one however many were
    queued in it: the sweep would find them within CAMPAIGN_SWEEP_SECONDS, and a journey's
    webhook step or a message's event is wanted within a second."""
    deliver = task_named("campaigns.tasks.deliver_webhooks")
    send_on_commit(lambda: deliver.delay(), what="webhook deliveries", once=True)


def webhook_withdraw(*, message_id: int, event: str) -> int:
    return WebhookDelivery.objects.filter(
        message_id=message_id, event=event, state=WebhookDelivery.State.PENDING
    ).delete()[0]


def deliver_due(*, limit: int = 200, timeout: float = 10.0) -> dict:
    """Posts due deliveries once each; failures are rescheduled with backoff, then given up."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING)
        .filter(next_attempt_at__lte=now)
        .select_related("endpoint")
        .order_by("next_attempt_at")[:limit]
    )
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    with outbound.session() as session:
        for delivery in due:
            # Claim by pushing the next attempt out; a parallel runner skips it.
            claimed = WebhookDelivery.objects.filter(
                pk=delivery.pk,
                state=WebhookDelivery.State.PENDING,
                next_attempt_at=delivery.next_attempt_at,
            ).update(next_attempt_at=now + timedelta(seconds=timeout * 3))
            if claimed:
                counts[_attempt(session, delivery, timeout)] += 1
    return counts


def _attempt(session: requests.Session, delivery: WebhookDelivery, timeout: float) -> str:
    body = json.dumps({"id": str(delivery.event_id), **delivery.payload}, separators=(",", ":"))
    headers = {
        "Content-Type": "application/json",
        "X-Marketing-AI-Event": delivery.event,
        "X-Marketing-AI-Delivery": str(delivery.event_id),
        "X-Marketing-AI-Signature": signature(delivery.endpoint.secret, body.encode()),
    }
    code, error = None, ""
    try:
        response = outbound.post(
            session, delivery.endpoint.url, data=body, headers=headers, timeout=timeout
        )
        code = response.status_code
        if 200 <= code < 300:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                state=WebhookDelivery.State.DELIVERED,
                attempts=delivery.attempts + 1,
                status_code=code,
                error="",
                delivered_at=timezone.now(),
            )
            return "delivered"
        error = outbound.response_reason(response)
    except requests.RequestException as exc:
        error = outbound.failure_reason(exc)
    attempts = delivery.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        state, result = WebhookDelivery.State.FAILED, "failed"
        next_at = timezone.now()
    else:
        state, result = WebhookDelivery.State.PENDING, "retrying"
        next_at = timezone.now() + timedelta(seconds=BACKOFF_SECONDS[attempts - 1])
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=state, attempts=attempts, status_code=code, error=error[:500], next_attempt_at=next_at
    )
    return result


def pending_exists() -> bool:
    return WebhookDelivery.objects.filter(
        Q(state=WebhookDelivery.State.PENDING) & Q(next_attempt_at__lte=timezone.now())
    ).exists()


def _conversation_waiting(sender, conversation, message, **_) -> None:
    webhook_emit(
        workspace_id=conversation.workspace_id,
        event="conversation.waiting",
        # Ids only: the text is personal data (GET /api/v1/chat/conversations/<id> has it while
        # it exists), and the token is the visitor's handle to the chat, not for a helpdesk log.
        data={"conversation": conversation.pk, "customer": conversation.customer_id},
    )


def connect() -> None:
    conversation_waiting.connect(
        _conversation_waiting, dispatch_uid="campaigns.conversation_waiting"
    )
