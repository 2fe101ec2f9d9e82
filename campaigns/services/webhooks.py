"""Outbound webhooks: an outbox of deliveries written in the same transaction as the change they
report, then posted (signed, retried with backoff) by a worker.

The URL is an integrator's, so every attempt goes through campaigns.outbound (public addresses
only, checked on the address actually connected to, no redirects) and the log keeps the status
code and a short fixed reason, never the answer's body."""

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import outbound
from campaigns.channels.http import signature
from campaigns.models import WebhookDelivery, WebhookEndpoint
from crm.signals import conversation_waiting
from workers.services import nudge_on_commit

DELIVER = "campaigns.tasks.deliver_webhooks"
BATCH = 100  # deliveries claimed at a time: a run claims again as soon as these are posted
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
    return webhook_emit_many(
        workspace_id=workspace_id, event=event, items=[(data, message_id)],
        endpoints=endpoints, delay=delay,
    )  # fmt: skip


def webhook_emit_many(
    *,
    workspace_id: int,
    event: str,
    items: list[tuple[dict, int | None]],
    endpoints: list[WebhookEndpoint] | None = None,
    delay: float = 0,
) -> int:
    """webhook_emit for many changes of one kind at once, (data, message id) each: one insert
    (a journey step moving a thousand enrolments writes their deliveries together)."""
    endpoints = endpoints_for(workspace_id, event) if endpoints is None else endpoints
    if not endpoints or not items:
        return 0
    now = timezone.now()
    rows = [
        WebhookDelivery(
            endpoint=e,
            event=event,
            message_id=message_id,
            payload={"type": event, "created": now.isoformat(), "data": data},
            next_attempt_at=now + timedelta(seconds=delay),
        )
        for data, message_id in items
        for e in endpoints
    ]
    WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
    if delay <= 0:
        deliveries_soon()
    return len(rows)


def deliveries_soon() -> None:
    """Starts a run of the due deliveries once the transaction commits, one however many were
    queued in it: the sweep would find them within CAMPAIGN_SWEEP_SECONDS, and a journey's
    webhook step or a message's event is wanted within a second."""
    nudge_on_commit(DELIVER)


def webhook_withdraw(*, message_id: int, event: str) -> int:
    return WebhookDelivery.objects.filter(
        message_id=message_id, event=event, state=WebhookDelivery.State.PENDING
    ).delete()[0]


def deliver_due(*, limit: int = BATCH, timeout: float = 10.0) -> dict:
    """Posts due deliveries once each; failures are rescheduled with backoff, then given up.

    The batch is claimed in one statement (SKIP LOCKED: runners side by side take different
    rows) by pushing its next attempt out past the time its posts can take; the posts go out
    WEBHOOK_CONCURRENCY at a time (a receiver's answer takes a round trip, and one slow
    receiver must not hold up the rest), and their outcomes are written back together."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.filter(
                state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now
            )
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .order_by("next_attempt_at")[:limit]
        )
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in due]).update(
            next_attempt_at=now + timedelta(seconds=timeout * 3)
        )
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    if not due:
        return counts

    def attempt(delivery: WebhookDelivery) -> tuple[WebhookDelivery, int | None, str]:
        if not hasattr(_posters, "session"):
            _posters.session = outbound.session()
        return (delivery, *_post(_posters.session, delivery, timeout))

    outcomes = list(_posting_pool().map(attempt, due))
    delivered = [(d, code) for d, code, error in outcomes if error is None]
    done_at = timezone.now()
    for code in {code for _, code in delivered}:
        WebhookDelivery.objects.filter(pk__in=[d.pk for d, c in delivered if c == code]).update(
            state=WebhookDelivery.State.DELIVERED,
            attempts=F("attempts") + 1,
            status_code=code,
            error="",
            delivered_at=done_at,
        )
    counts["delivered"] = len(delivered)
    for delivery, code, error in outcomes:
        if error is not None:
            counts[_failed(delivery, code, error)] += 1
    return counts


_pool: tuple[tuple[int, int], ThreadPoolExecutor] | None = None
_posters = threading.local()  # each posting thread's session, kept with its connections


def _posting_pool() -> ThreadPoolExecutor:
    """The process's posting threads, kept from run to run (a receiver's connection is reused,
    and a run starts without starting threads); a forked worker process makes its own."""
    global _pool
    key = (os.getpid(), max(1, settings.WEBHOOK_CONCURRENCY))
    if _pool is None or _pool[0] != key:
        _pool = (key, ThreadPoolExecutor(key[1], thread_name_prefix="webhook-post"))
    return _pool[1]


def _post(session: requests.Session, delivery: WebhookDelivery, timeout: float):
    """(status code, None) for a 2xx, else (code or None, a short reason)."""
    body = json.dumps({"id": str(delivery.event_id), **delivery.payload}, separators=(",", ":"))
    headers = {
        "Content-Type": "application/json",
        "X-Marketing-AI-Event": delivery.event,
        "X-Marketing-AI-Delivery": str(delivery.event_id),
        "X-Marketing-AI-Signature": signature(delivery.endpoint.secret, body.encode()),
    }
    try:
        response = outbound.post(
            session, delivery.endpoint.url, data=body, headers=headers, timeout=timeout
        )
    except requests.RequestException as exc:
        return None, outbound.failure_reason(exc)
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, outbound.response_reason(response)


def _failed(delivery: WebhookDelivery, code: int | None, error: str) -> str:
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
