"""What a recipient does with a message: opens, clicks, unsubscribes, changes preferences.

Each first open and first click is stamped on the ledger row and added to the customer's
timeline as an event (so segments can use "opened campaign X"); unsubscribing withdraws consent
for the campaign's channel and tells subscribed integrations.
"""

from django.db import transaction
from django.utils import timezone

from campaigns.models import Message
from campaigns.services.delivery import CONSENT_CHANNEL
from campaigns.services.webhooks import webhook_emit
from crm.models import Channel, Consent, Event
from crm.services.customers import consent_set


def _event(message: Message, kind: str, **properties) -> None:
    Event.objects.bulk_create(
        [
            Event(
                workspace_id=message.campaign.workspace_id,
                customer_id=message.customer_id,
                type=kind,
                occurred_at=timezone.now(),
                properties={
                    "campaign": message.campaign_id,
                    "variant": message.variant.name if message.variant else None,
                    **properties,
                },
                idempotency_key=f"{kind}:{message.token.hex}",
            )
        ],
        ignore_conflicts=True,
    )


def _who(message: Message, user_agent: str | None, now) -> dict:
    # What tells a person's open from a machine's (best send time, marketing_ai.ml.sendtime):
    # the fetcher's user agent and how long after the send it came.
    after = (now - message.sent_at).total_seconds() if message.sent_at else None
    return {"user_agent": (user_agent or "")[:300], "seconds_after_send": after}


def message_opened(*, message: Message, user_agent: str | None = None) -> bool:
    now = timezone.now()
    first = Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
    if first:
        _event(message, "email_open", **_who(message, user_agent, now))
    return bool(first)


def message_clicked(*, message: Message, url: str, user_agent: str | None = None) -> bool:
    now = timezone.now()
    Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
    first = Message.objects.filter(pk=message.pk, clicked_at__isnull=True).update(clicked_at=now)
    if first:
        _event(message, "email_click", url=url[:500], **_who(message, user_agent, now))
    return bool(first)


# Set by the mail system, not by the person: a bounced address does not exist, a complaint is a
# spam report. No public page (unsubscribe, one-click List-Unsubscribe, preferences: anyone
# holding a forwarded e-mail's link) may replace either, not even with "unsubscribed", which
# the preference page could then turn back into "subscribed"; only staff or an integration,
# deliberately, can.
LOCKED = (Consent.Status.BOUNCED, Consent.Status.COMPLAINED)


def _public_consent_set(*, message: Message, channel: str, status: str, source: str) -> bool:
    """Sets one channel's consent from a public page unless it already is `status` or is
    locked (bounced, complained); True if it changed. The row is locked while deciding, so a
    bounce recorded meanwhile is not overwritten."""
    current = (
        Consent.objects.select_for_update()
        .filter(customer_id=message.customer_id, channel=channel)
        .values_list("status", flat=True)
        .first()
    )
    if current == status or current in LOCKED:
        return False
    consent_set(customer=message.customer, channel=channel, status=status, source=source)
    return True


@transaction.atomic
def message_unsubscribe(*, message: Message, source: str) -> bool:
    """Withdraws consent for the message's channel; False if it was already withdrawn, bounced
    or complained (those stay as they are: the address gets no mail either way)."""
    channel = CONSENT_CHANNEL[message.campaign.channel]
    changed = _public_consent_set(
        message=message,
        channel=channel,
        status=Consent.Status.UNSUBSCRIBED,
        source=f"{source}: campaign {message.campaign_id}",
    )
    if not changed:
        return False
    _event(message, "unsubscribe", channel=channel)
    webhook_emit(
        workspace_id=message.campaign.workspace_id,
        event="customer.unsubscribed",
        data={
            "customer": message.customer_id,
            "channel": channel,
            "campaign": message.campaign_id,
            "message": message.token.hex,
            "at": timezone.now().isoformat(),
        },
    )
    return True


def _statuses(message: Message) -> dict[str, str]:
    return dict(
        Consent.objects.filter(customer_id=message.customer_id).values_list("channel", "status")
    )


def preferences_of(message: Message) -> dict[str, bool]:
    statuses = _statuses(message)
    return {c: statuses.get(c) == Consent.Status.SUBSCRIBED for c in Channel.values}


def preferences_locked(message: Message) -> set[str]:
    """The channels the preference page shows but cannot change (bounced or complained)."""
    return {c for c, status in _statuses(message).items() if status in LOCKED}


@transaction.atomic
def preferences_save(*, message: Message, wanted: dict[str, bool]) -> None:
    """Applies the preference page's choices; channels in `preferences_locked` are left as
    they are whatever was posted."""
    current = preferences_of(message)
    locked = preferences_locked(message)
    for channel, on in wanted.items():
        if channel in locked:
            continue
        if channel in current and current[channel] != on:
            if not on and channel == CONSENT_CHANNEL[message.campaign.channel]:
                message_unsubscribe(message=message, source="preference page")
                continue
            status = Consent.Status.SUBSCRIBED if on else Consent.Status.UNSUBSCRIBED
            _public_consent_set(
                message=message, channel=channel, status=status, source="preference page"
            )
