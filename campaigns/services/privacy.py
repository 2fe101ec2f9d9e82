"""The send ledger holds personal data (the address a message went to, what the person did
with it): it appears in the customer's export and timeline, and erasure blanks it. The rows
themselves stay, anonymous, so a campaign's totals do not change after an erasure."""

from django.db.models import F

from campaigns.models import Message, WebhookDelivery
from crm import selectors
from crm.models import Customer
from crm.signals import customer_erased

EXPORTED = (
    "campaign_id", "campaign__name", "variant__name", "holdout", "state", "reason", "send_at",
    "sent_at", "address", "opened_at", "clicked_at", "converted_at", "revenue",
)  # fmt: skip


def messages_export(customer: Customer) -> list[dict]:
    rows = Message.objects.filter(customer=customer).order_by("send_at").values(*EXPORTED)
    return [{**row, "revenue": str(row["revenue"])} for row in rows]


def messages_timeline(customer: Customer, limit: int) -> list[dict]:
    rows = (
        Message.objects.filter(customer=customer)
        .exclude(state=Message.State.SKIPPED, holdout=False)
        .order_by("-send_at")
        .values(*EXPORTED, message_id=F("id"))[:limit]
    )
    return [
        {
            "at": row["sent_at"] or row["send_at"],
            "kind": "message",
            **row,
            "revenue": str(row["revenue"]),
        }
        for row in rows
    ]


def erase_messages(sender, customer: Customer, counts: dict, **_) -> None:
    ids = list(Message.objects.filter(customer=customer).values_list("id", flat=True))
    counts["messages_anonymised"] = Message.objects.filter(pk__in=ids).update(address="")
    # Webhook payloads that named the address are personal data too.
    counts["webhook_payloads_removed"] = WebhookDelivery.objects.filter(
        message_id__in=ids
    ).delete()[0]


def connect() -> None:
    selectors.EXPORT_SECTIONS["messages"] = messages_export
    selectors.TIMELINE_SOURCES.append(messages_timeline)
    customer_erased.connect(erase_messages, dispatch_uid="campaigns.erase_messages")
