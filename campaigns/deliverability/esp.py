"""ESP tracking webhooks, through django-anymail: its view for each ESP checks the request
(basic auth with ANYMAIL's WEBHOOK_SECRET, and the ESP's signature where it has one) and
sends the `tracking` signal; the receiver here only records the event (EspEvent, once per the
ESP's event id) and queues the work on it, so the ESP gets its answer at once. An error while
recording answers 400 (campaigns.deliverability.webhooks) and the ESP posts it again.

Bounced and rejected are hard bounces, deferred soft, complained a complaint, unsubscribed a
withdrawal of mail consent; the rest (sent, delivered, opened ...) is not recorded here. An
event names our message by anymail's message_id (stored as Message.provider_id when we sent
it) or by our Message-ID, <token@EMAIL_MESSAGE_ID_DOMAIN>, which some ESPs report instead; the
message must have gone to the event's recipient, else nothing is recorded.
"""

import hashlib
import logging
import re
import uuid

from anymail.signals import EventType, tracking
from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.deliverability import reports
from campaigns.models import DeliveryReport, Message
from campaigns.models.deliverability import EspEvent

logger = logging.getLogger(__name__)
KINDS = {
    EventType.BOUNCED: DeliveryReport.Kind.HARD,
    EventType.REJECTED: DeliveryReport.Kind.HARD,
    EventType.DEFERRED: DeliveryReport.Kind.SOFT,
    EventType.COMPLAINED: DeliveryReport.Kind.COMPLAINT,
    EventType.UNSUBSCRIBED: DeliveryReport.Kind.UNSUBSCRIBED,
}
PROCESS_TASK = "campaigns.tasks.process_esp_event"
_OUR_MESSAGE_ID = re.compile(r"<?([0-9a-f]{32})@[^>\s]+>?", re.IGNORECASE)


def _event_id(esp: str, event) -> str:
    if event.event_id:
        return str(event.event_id)[:200]
    # No id from this ESP: the same event posted twice has the same fields.
    seen = "|".join(
        str(x) for x in (esp, event.event_type, event.message_id, event.recipient, event.timestamp)
    )
    return "sha256:" + hashlib.sha256(seen.encode()).hexdigest()


def _excerpt(event) -> str:
    parts = [event.reject_reason or "", event.description or "", event.mta_response or ""]
    return " ".join(" ".join(p.split()) for p in parts if p)[:300]


def _status(event) -> str:
    found = re.search(r"\b[245]\.\d{1,3}\.\d{1,3}\b", event.mta_response or "")
    return found.group(0) if found else (event.reject_reason or "")[:40]


def tracking_received(sender, event, esp_name: str, **_) -> None:
    """anymail's `tracking` signal: records the event and queues its processing."""
    if event.event_type not in KINDS:
        return
    token = ""
    found = _OUR_MESSAGE_ID.fullmatch(str(event.message_id or "").strip())
    if found:
        token = found.group(1).lower()
    try:
        with transaction.atomic():
            row = EspEvent.objects.create(
                esp=esp_name[:40],
                event_id=_event_id(esp_name, event),
                event_type=event.event_type,
                message_id=str(event.message_id or "")[:200],
                recipient=(event.recipient or "").strip().lower()[:254],
                token=token,
                status=_status(event),
                excerpt=_excerpt(event),
                occurred_at=event.timestamp,
            )
    except IntegrityError:  # posted again (the ESP retried): recorded already ...
        row = EspEvent.objects.filter(
            esp=esp_name[:40], event_id=_event_id(esp_name, event)
        ).first()
        if row is None or row.processed_at is not None:
            return
        # ... but not processed: its task may never have been queued (the broker was away,
        # which answered 400 and made the ESP post it again), so it is queued now.
    # By name: campaigns.tasks, which defines it, sits above this module.
    transaction.on_commit(lambda: current_app.send_task(PROCESS_TASK, args=[row.pk]))


def _message_of(row: EspEvent) -> Message | None:
    candidates = Message.objects.none()
    if row.message_id:
        candidates = Message.objects.filter(provider_id=row.message_id)
    if not candidates.exists() and row.token:
        candidates = Message.objects.filter(token=uuid.UUID(row.token))
    if row.recipient:
        candidates = candidates.filter(address__iexact=row.recipient)
    # One ESP message to several of ours cannot be told apart: none rather than a guess.
    found = list(candidates.only("id", "address")[:2])
    return found[0] if len(found) == 1 else None


def esp_event_process(*, event_id: int) -> str:
    """Records the event on its message and acts on it (reports.report_record); its outcome is
    kept on the row. Run again for the same event, it does nothing."""
    row = EspEvent.objects.filter(pk=event_id, processed_at__isnull=True).first()
    if row is None:
        return "already processed"
    message = _message_of(row)
    if message is None:
        outcome = "no message of ours"
    else:
        created = reports.report_record(
            message=message,
            kind=KINDS[row.event_type],
            address=message.address or row.recipient,
            report_id=f"{row.esp}:{row.event_id}"[:200],
            status=row.status,
            excerpt=row.excerpt,
            source=DeliveryReport.Source.WEBHOOK,
        )
        outcome = "recorded" if created else "recorded before"
    EspEvent.objects.filter(pk=row.pk).update(processed_at=timezone.now(), outcome=outcome)
    return outcome


def connect() -> None:
    tracking.connect(tracking_received, dispatch_uid="campaigns.deliverability.esp")
