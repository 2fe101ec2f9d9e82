"""Recording the bounce and complaint reports that come back, on the messages they are about."""

import email
import hashlib
import logging
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from campaigns.deliverability import parse, policy, selectors
from campaigns.models import DeliveryReport, Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ingested:
    recorded: int  # new reports on messages
    repeated: int  # reports already recorded (the same report delivered again)
    unmatched: int  # failures or complaints that named no message of ours by a signed path


def _report_id(raw: bytes, header) -> str:
    if header is not None and str(header).strip():
        return str(header).strip()[:200]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def report_record(
    *,
    message: Message,
    kind: str,
    address: str,
    report_id: str,
    status: str,
    excerpt: str,
    source: str,
) -> bool:
    """Records one failure or complaint on its message and acts on it (policy.report_apply) in
    one transaction; False if this report was recorded before (nothing is done twice)."""
    try:
        with transaction.atomic():
            report, created = DeliveryReport.objects.get_or_create(
                message=message,
                kind=kind,
                address=address,
                report_id=report_id,
                defaults={"status": status[:40], "excerpt": excerpt[:300], "source": source},
            )
            if created:
                policy.report_apply(report=report)
    except IntegrityError:  # the same report, recorded by another receiver just now
        return False
    return created


def report_ingest(
    *, raw: bytes, recipients: list[str], source: str, workspace_id: int | None = None
) -> Ingested:
    """Parses one report (campaigns.deliverability.parse) and records each failure or complaint
    on the message its signed return path names, under that message's address: the token wins
    over the address the report states (a forwarded recipient, a rewritten one). A report with
    no such path is not recorded: the same address may be anyone's in any workspace. With
    `workspace_id` (a workspace's own mailbox) only that workspace's messages are named."""
    report = email.message_from_bytes(raw)
    try:
        records = parse.parse(report, recipients=recipients, read_token=selectors.message_token_of)
    except Exception:  # a report nobody can read is dropped, not retried by the MTA forever
        logger.exception("a report that could not be read was dropped")
        return Ingested(0, 0, 0)
    report_id = _report_id(raw, report.get("message-id"))
    recorded = repeated = unmatched = 0
    messages: dict[str, Message | None] = {}
    rows = Message.objects.all()
    if workspace_id is not None:
        rows = rows.filter(campaign__workspace_id=workspace_id)
    for record in records:
        if record.token not in messages and record.token is not None:
            messages[record.token] = (
                rows.filter(token=uuid.UUID(record.token)).only("id", "address").first()
            )
        message = messages.get(record.token) if record.token else None
        if message is None:
            unmatched += 1
            continue
        address = message.address or record.address
        excerpt = record.excerpt
        if record.address and record.address != address:
            excerpt = f"(report names {record.address}) {excerpt}"
        created = report_record(
            message=message,
            kind=record.kind,
            address=address,
            report_id=report_id,
            status=record.status,
            excerpt=excerpt,
            source=source,
        )
        recorded += created
        repeated += not created
    if unmatched:
        logger.info("report %s: %d records named no message of ours", report_id, unmatched)
    return Ingested(recorded, repeated, unmatched)
