"""What a recorded bounce or complaint does (campaigns.deliverability.reports calls this in the
transaction that records the report, so a report is acted on exactly when it is first recorded):

- a hard bounce suppresses the address at once;
- a soft bounce suppresses it once the workspace's limit is reached (DeliverabilityPolicy:
  N soft bounces in M days, by default 3 in 7), counting reports since staff last lifted it;
- a complaint suppresses it and withdraws the person's consent on every channel, with source
  "complaint" (mail: "complained", which no public page can turn back; other channels:
  "unsubscribed");
- an unsubscribe an ESP reports withdraws mail consent, as our own unsubscribe link does.

Each goes on the customer's timeline as an event (email_bounce, email_complaint,
email_unsubscribe_esp), once per report. Sends already queued to the address are skipped at
send time: delivery reads Suppression for every chunk it sends.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from campaigns.models import DeliveryReport, Message, Suppression
from campaigns.models.deliverability import (
    DEFAULT_SOFT_BOUNCE_DAYS,
    DEFAULT_SOFT_BOUNCE_LIMIT,
    DeliverabilityPolicy,
)
from campaigns.services.delivery import CONSENT_CHANNEL
from crm.models import AuditEntry, Channel, Consent, Customer, Event
from crm.services.customers import consent_set

Kind = DeliveryReport.Kind
EVENT_TYPES = {
    Kind.HARD: "email_bounce",
    Kind.SOFT: "email_bounce",
    Kind.COMPLAINT: "email_complaint",
    Kind.UNSUBSCRIBED: "email_unsubscribe_esp",
}


def soft_bounce_rule(workspace_id: int) -> tuple[int, int]:
    """(limit, days) for the workspace."""
    row = DeliverabilityPolicy.objects.filter(workspace_id=workspace_id).first()
    if row is None:
        return DEFAULT_SOFT_BOUNCE_LIMIT, DEFAULT_SOFT_BOUNCE_DAYS
    return row.soft_bounce_limit, row.soft_bounce_days


def _suppress(message: Message, report: DeliveryReport, reason: str, note: str) -> bool:
    _, created = Suppression.objects.get_or_create(
        workspace_id=message.campaign.workspace_id,
        channel=message.campaign.channel,
        address=report.address.lower(),
        defaults={"reason": reason, "note": note[:300], "report": report},
    )
    return created


def _timeline(message: Message, report: DeliveryReport) -> None:
    Event.objects.bulk_create(
        [
            Event(
                workspace_id=message.campaign.workspace_id,
                customer_id=message.customer_id,
                type=EVENT_TYPES[report.kind],
                occurred_at=report.received_at or timezone.now(),
                properties={
                    "campaign": message.campaign_id,
                    "kind": report.kind,
                    "status": report.status,
                    "source": report.source,
                    "report": report.pk,
                },
                idempotency_key=f"report:{report.pk}",
            )
        ],
        ignore_conflicts=True,
    )


def _soft_count(message: Message, address: str, days: int) -> int:
    since = timezone.now() - timedelta(days=days)
    return (
        DeliveryReport.objects.filter(
            message__campaign__workspace_id=message.campaign.workspace_id,
            address=address,
            kind=Kind.SOFT,
            received_at__gte=since,
            lifted_at__isnull=True,
        )
        .values("report_id")  # one report naming two of the address's messages counts once
        .distinct()
        .count()
    )


def _withdraw_everywhere(message: Message) -> None:
    mail = CONSENT_CHANNEL[message.campaign.channel]
    for channel in Channel.values:
        status = Consent.Status.COMPLAINED if channel == mail else Consent.Status.UNSUBSCRIBED
        consent_set(customer=message.customer, channel=channel, status=status, source="complaint")


def _withdraw_mail(message: Message, source: str) -> None:
    channel = CONSENT_CHANNEL[message.campaign.channel]
    current = (
        Consent.objects.select_for_update()
        .filter(customer_id=message.customer_id, channel=channel)
        .values_list("status", flat=True)
        .first()
    )
    if current in (None, Consent.Status.SUBSCRIBED):
        consent_set(
            customer=message.customer,
            channel=channel,
            status=Consent.Status.UNSUBSCRIBED,
            source=source,
        )


def _excerpt(report: DeliveryReport) -> str:
    return f"{report.status or '-'}: {report.excerpt}"


@transaction.atomic
def report_apply(*, report: DeliveryReport) -> str:
    """Acts on a report just recorded; returns what it did ("suppressed", "counted 2 of 3",
    "already suppressed", "consent withdrawn")."""
    message = Message.objects.select_related("campaign", "customer").get(pk=report.message_id)
    _timeline(message, report)
    address = report.address.lower()
    if report.kind == Kind.HARD:
        done = _suppress(
            message, report, Suppression.Reason.BOUNCED, f"hard bounce {_excerpt(report)}"
        )
        return "suppressed" if done else "already suppressed"
    if report.kind == Kind.COMPLAINT:
        _withdraw_everywhere(message)
        done = _suppress(
            message, report, Suppression.Reason.COMPLAINED, f"complaint {_excerpt(report)}"
        )
        return "suppressed" if done else "already suppressed"
    if report.kind == Kind.UNSUBSCRIBED:
        _withdraw_mail(message, f"ESP unsubscribe: campaign {message.campaign_id}")
        return "consent withdrawn"
    limit, days = soft_bounce_rule(message.campaign.workspace_id)
    count = _soft_count(message, address, days)
    if count < limit:
        return f"counted {count} of {limit}"
    done = _suppress(
        message,
        report,
        Suppression.Reason.BOUNCED,
        f"{count} soft bounces in {days} days, last {_excerpt(report)}",
    )
    return "suppressed" if done else "already suppressed"


@transaction.atomic
def suppression_lift(*, suppression: Suppression, actor: str, note: str) -> None:
    """Staff take an address off the suppression list, saying why: recorded in the audit log
    (who, when, why; ids and the reason, never the address), the reports that led to it no
    longer count towards the soft-bounce rule. Consent a complaint withdrew stays withdrawn
    (staff give it back on the customer, deliberately)."""
    note = note.strip()
    if not note:
        raise ValueError("say why the suppression is lifted")
    customer_id = (
        Customer.objects.filter(workspace_id=suppression.workspace_id, email=suppression.address)
        .values_list("pk", flat=True)
        .first()
    )
    AuditEntry.objects.create(
        workspace_id=suppression.workspace_id,
        action="suppression.lift",
        actor=actor[:200],
        customer_id=customer_id,
        details={
            "suppression": suppression.pk,
            "channel": suppression.channel,
            "reason": suppression.reason,
            "report": suppression.report_id,
            "suppressed_at": suppression.created_at.isoformat(),
            "note": note[:500],
        },
    )
    DeliveryReport.objects.filter(
        message__campaign__workspace_id=suppression.workspace_id,
        address=suppression.address,
        lifted_at__isnull=True,
    ).update(lifted_at=timezone.now())
    suppression.delete()
