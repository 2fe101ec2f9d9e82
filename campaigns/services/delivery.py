"""Delivery: workers claim due rows of the ledger in small chunks and send them one by one.

Any number of `deliver` tasks may run for one campaign (rows are claimed with SKIP LOCKED on
PostgreSQL); a task that finds nothing due returns at once, so extra or repeated tasks are
harmless. The sweeper (`campaigns.services.sweep`) re-queues work whose task was lost.
"""

import logging
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from campaigns import ledger, rendering, tracking, unrecorded
from campaigns.channels import Channel, Outcome, Outgoing, channel_for
from campaigns.models import Campaign, Enrolment, Message, Suppression, Variant
from campaigns.protection import breaker, throttle
from campaigns.ratelimit import RateLimiter
from campaigns.services.lifecycle import campaign_finish_if_done
from campaigns.services.webhooks import endpoints_for, webhook_emit, webhook_withdraw
from crm.models import Consent, Product

# How old the suppression list a chunk sends by may get before it is read again.
SUPPRESSIONS_FRESH_SECONDS = 1.0

logger = logging.getLogger(__name__)

ACTIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING)
MESSAGE_FIELDS = (
    "id",
    "token",
    "campaign_id",
    "customer_id",
    "variant_id",
    "attempts",
    "enrolment_id",
)
# What a template may use of its recipient (and what the channels need).
CUSTOMER_FIELDS = ("id", "workspace_id", "email", "phone", "first_name", "last_name", "locale",
                   "time_zone", "country", "attributes", "erased_at")  # fmt: skip
CONSENT_CHANNEL = {"email": "email", "sms": "sms", "webhook": "push"}
OPTED_OUT = {Consent.Status.UNSUBSCRIBED, Consent.Status.BOUNCED, Consent.Status.COMPLAINED}


def _items(context) -> list[dict]:
    """A context's `properties.items` rows; anything else (an enrolment's context is what the API
    or an event was given) is no items, never a failed send."""
    properties = context.get("properties") if isinstance(context, dict) else None
    items = properties.get("items") if isinstance(properties, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def with_products(workspace_id: int, contexts: dict[int, dict]) -> dict[int, dict]:
    """Enrolment contexts with `products`: the catalogue rows (name, price, currency) of the
    SKUs their trigger's `items` name, each with its quantity, so a cart reminder can name what
    was left behind. Items whose SKU the catalogue lacks are left out."""
    skus = {str(item.get("sku")) for context in contexts.values() for item in _items(context)}
    if not skus:
        return contexts
    rows = {
        row["sku"]: row
        for row in Product.objects.filter(workspace_id=workspace_id, sku__in=skus).values(
            "sku", "name", "price", "currency"
        )
    }
    shown = {}
    for pk, context in contexts.items():
        products = [
            {**rows[str(item.get("sku"))], "quantity": item.get("quantity", 1)}
            for item in _items(context)
            if str(item.get("sku")) in rows
        ]
        shown[pk] = {**context, "products": products} if products else context
    return shown


def consent_allows(rule: str, status: str | None) -> bool:
    if rule == Campaign.ConsentRule.OPT_IN:
        return status == Consent.Status.SUBSCRIBED
    return status not in OPTED_OUT


def deliver(*, campaign_id: int, budget_seconds: float | None = None) -> dict:
    """Sends due messages of a campaign until none are due or the time budget is spent.

    Returns counts by outcome and `more` (due rows left: the caller queues another task)."""
    campaign = Campaign.objects.select_related("workspace").get(pk=campaign_id)
    counts: Counter = Counter()
    if campaign.status not in ACTIVE:
        return {"status": campaign.status, "more": False}
    budget = settings.CAMPAIGN_DELIVER_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    run = _Run(campaign, deadline)
    with run.channel:
        while time.monotonic() < deadline:
            status = (
                Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
            )
            if status not in ACTIVE:
                break
            claim, ids = ledger.claim_due(
                campaign_id=campaign_id, now=timezone.now(), limit=settings.CAMPAIGN_CHUNK
            )
            if not ids:
                break
            if status == Campaign.Status.SCHEDULED:
                Campaign.objects.filter(pk=campaign_id, status=status).update(
                    status=Campaign.Status.SENDING
                )
            try:
                counts.update(run.chunk(claim, ids))
            finally:
                # Rows of this chunk not reached (deadline, error) go back to the queue now
                # rather than waiting for their claim to go stale; the claim did not use up one
                # of their attempts.
                # Never one whose "." went out while its commit was lost (not yet recorded).
                Message.objects.filter(claim=claim, state=Message.State.SENDING).exclude(
                    pk__in=run.unrecorded
                ).update(state=Message.State.QUEUED, claim=None, attempts=F("attempts") - 1)
    campaign_finish_if_done(campaign_id=campaign_id)
    more = Message.objects.filter(
        campaign_id=campaign_id,
        state=Message.State.QUEUED,
        send_at__lte=timezone.now(),
        variant__isnull=False,
    ).exists()
    return {**counts, "more": more}


class _Run:
    """One deliver task's state: channel, rate limiter, webhook subscribers, per-chunk lookups."""

    def __init__(self, campaign: Campaign, deadline: float) -> None:
        self.campaign = campaign
        self.deadline = deadline
        self.channel: Channel = channel_for(campaign.channel)
        self.limiter = RateLimiter(channel=campaign.channel, workspace_id=campaign.workspace_id)
        self.gate = throttle.DomainGate(
            workspace_id=campaign.workspace_id, channel=campaign.channel
        )
        self.guard = breaker.Guard(campaign)
        self.on_sent = endpoints_for(campaign.workspace_id, "message.sent")
        self.on_failed = endpoints_for(campaign.workspace_id, "message.failed")
        self.consent_channel = CONSENT_CHANNEL[campaign.channel]
        self.unrecorded: set[int] = set()  # sent, but the database lost the commit (CommitUnknown)

    def chunk(self, claim, ids: list[int]) -> Counter:
        rows = list(
            Message.objects.filter(pk__in=ids, claim=claim, state=Message.State.SENDING)
            .select_related("customer")
            .order_by("id")
            .only(*MESSAGE_FIELDS, *(f"customer__{f}" for f in CUSTOMER_FIELDS))
        )
        variants = {v.pk: v for v in Variant.objects.filter(pk__in={m.variant_id for m in rows})}
        for m in rows:
            m.variant = variants[m.variant_id]
        # A journey's message shows what started its enrolment (a cart's items...).
        self.triggers = with_products(
            self.campaign.workspace_id,
            dict(
                Enrolment.objects.filter(
                    pk__in={m.enrolment_id for m in rows if m.enrolment_id}
                ).values_list("pk", "context")
            ),
        )
        customer_ids = [m.customer_id for m in rows]
        consent = dict(
            Consent.objects.filter(
                customer_id__in=customer_ids, channel=self.consent_channel
            ).values_list("customer_id", "status")
        )
        addresses = {m.pk: self.channel.address_of(m.customer) for m in rows}
        known = [a for a in addresses.values() if a]

        def suppressions() -> set:
            return set(
                Suppression.objects.filter(
                    workspace_id=self.campaign.workspace_id,
                    channel=self.campaign.channel,
                    address__in=known,
                ).values_list("address", flat=True)
            )

        suppressed, read_at = suppressions(), time.monotonic()
        counts: Counter = Counter()
        # Messages whose provider is cooling down or at its rate: later, not failed, no attempt
        # used; put back together when the chunk ends, one UPDATE per group.
        later: dict[str, dict[int, datetime]] = {}
        try:
            for message in rows:
                if not self.limiter.take(self.deadline):
                    break
                # A chunk paced by a rate limit takes seconds: a bounce or complaint recorded
                # meanwhile applies to the rest of it, not from the next chunk on.
                if time.monotonic() - read_at > SUPPRESSIONS_FRESH_SECONDS:
                    suppressed, read_at = suppressions(), time.monotonic()
                address = addresses[message.pk]
                reason = self._unsendable(message, address, consent, suppressed)
                if reason:
                    ledger.finish_unsent(
                        message_id=message.pk,
                        claim=claim,
                        state=Message.State.SKIPPED,
                        reason=reason,
                    )
                    counts["skipped"] += 1
                    continue
                wait = self.gate.admit(address)
                if wait:
                    group = later.setdefault(throttle.group_of(address), {})
                    group[message.pk] = timezone.now() + timedelta(seconds=wait)
                    counts["deferred"] += 1
                    continue
                counts[self.send_one(message, claim, address)] += 1
                if self.guard.after_send():  # the circuit breaker paused the campaign
                    break
        finally:
            for group, retry_at in later.items():
                ledger.retry_many(
                    claim=claim,
                    retry_at=retry_at,
                    reason=f"waits for {group} (throttled)",
                    refund_attempt=True,
                )
        return counts

    def _unsendable(self, message: Message, address: str, consent: dict, suppressed: set) -> str:
        if message.customer.erased_at is not None:
            return "customer erased"
        if not address:
            return f"no {self.campaign.channel} address"
        if not consent_allows(self.campaign.consent_rule, consent.get(message.customer_id)):
            return "no consent at send time"
        if address in suppressed:
            return "address suppressed"
        return ""

    def send_one(self, message: Message, claim, address: str) -> str:
        token = message.token.hex
        unsubscribe_url = tracking.unsubscribe_url(token)
        try:
            rendered = rendering.compiled(message.variant).render_for(
                message.customer,
                unsubscribe_url=unsubscribe_url,
                preferences_url=tracking.preferences_url(token),
                message_token=token if self.campaign.channel == "email" else None,
                trigger=self.triggers.get(message.enrolment_id) if message.enrolment_id else None,
            )
        except Exception as exc:  # a template that fails for this customer fails this message
            ledger.finish_unsent(
                message_id=message.pk,
                claim=claim,
                state=Message.State.FAILED,
                reason=f"render: {type(exc).__name__}: {exc}",
            )
            return "failed"
        outgoing = Outgoing(
            message_id=message.pk,
            token=token,
            address=address,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            from_email=self.campaign.from_email,
            workspace_id=self.campaign.workspace_id,
            metadata={
                "campaign": self.campaign.pk,
                "variant": message.variant.name,
                "unsubscribe_url": unsubscribe_url,
            },
        )
        provider_id = f"<{token}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"
        now = timezone.now()

        def outbox() -> None:
            data = _message_data(message, address, now)
            for endpoint in self.on_sent:  # create(): no atomic block inside our transaction
                endpoint.deliveries.create(
                    event="message.sent",
                    message_id=message.pk,
                    next_attempt_at=now,
                    payload={"type": "message.sent", "created": now.isoformat(), "data": data},
                )

        lost: list[unrecorded.Send] = []

        def hand_off(point_of_no_return, known_id: str = "") -> None:
            try:
                ledger.hand_off(
                    message_id=message.pk,
                    claim=claim,
                    sent_at=now,
                    address=address,
                    provider_id=known_id or provider_id,
                    point_of_no_return=point_of_no_return,
                    also=outbox if self.on_sent else None,
                )
            except ledger.CommitUnknown:
                # The "." is out; note it before the server's answer is even read.
                lost.append(
                    unrecorded.note(
                        message_id=message.pk,
                        claim=claim,
                        sent_at=now,
                        address=address,
                        provider_id=known_id or provider_id,
                    )
                )
                self.unrecorded.add(message.pk)

        try:
            outcome = self.channel.send(outgoing, hand_off)
        except ledger.LostClaim:
            return "lost_claim"
        if lost:
            return self._settle_lost_commit(message, claim, address, outcome, lost[0])
        return self._settle(message, claim, address, outcome)

    def _settle_lost_commit(
        self, message: Message, claim, address: str, outcome: Outcome, send: unrecorded.Send
    ) -> str:
        """The database went away between the "." and the commit's answer."""
        if outcome.kind != "sent":
            # Refused after all: the server kept nothing, and the row says `sending` (the commit
            # was lost) or `sent` (it landed): either way it goes back for a retry.
            unrecorded.forget(message.pk)
            self.unrecorded.discard(message.pk)
            unrecorded.record(send, wait_seconds=settings.CAMPAIGN_CLAIM_LEASE_SECONDS / 2)
            return self._settle(message, claim, address, replace(outcome, after_hand_off=True))
        if unrecorded.record(send, wait_seconds=settings.CAMPAIGN_CLAIM_LEASE_SECONDS / 2):
            self.unrecorded.discard(message.pk)
        else:
            raise ledger.CommitUnknown(f"message {message.pk} sent; the sweeper will record it")
        return "sent"

    def _settle(self, message: Message, claim, address: str, outcome: Outcome) -> str:
        if outcome.kind == "sent":
            return "sent"
        from_state = Message.State.SENT if outcome.after_hand_off else Message.State.SENDING
        if outcome.after_hand_off:
            webhook_withdraw(message_id=message.pk, event="message.sent")
        throttled = outcome.kind == "retry" and throttle.is_throttling(outcome.reason)
        most = (
            settings.CAMPAIGN_THROTTLE_MAX_ATTEMPTS if throttled else settings.CAMPAIGN_MAX_ATTEMPTS
        )
        if outcome.kind == "retry" and message.attempts < most:
            delay = ledger.retry_delay(
                message.attempts,
                base=settings.CAMPAIGN_RETRY_BASE_SECONDS,
                cap=settings.CAMPAIGN_RETRY_MAX_SECONDS,
            )
            if throttled:  # the provider's cool-down, shared with every worker, sets the time
                delay = timedelta(seconds=self.gate.throttled(address, outcome.retry_after))
                self._postpone_group(address, timezone.now() + delay)
            if outcome.retry_after:
                delay = max(delay, timedelta(seconds=outcome.retry_after))
            retry_at = timezone.now() + delay
            if outcome.after_hand_off:
                ledger.revert_sent(
                    message_id=message.pk, claim=claim, retry_at=retry_at, reason=outcome.reason
                )
            else:
                ledger.retry_later(
                    message_id=message.pk, claim=claim, retry_at=retry_at, reason=outcome.reason
                )
            return "retried"
        reason = outcome.reason
        if outcome.kind == "retry":
            reason = f"gave up after {message.attempts} attempts: {reason}"
        ledger.finish_unsent(
            message_id=message.pk,
            claim=claim,
            state=Message.State.FAILED,
            reason=reason,
            from_state=from_state,
        )
        if outcome.suppress and address:
            Suppression.objects.get_or_create(
                workspace_id=self.campaign.workspace_id,
                channel=self.campaign.channel,
                address=address,
                defaults={"reason": Suppression.Reason.BOUNCED, "note": reason[:300]},
            )
        if self.on_failed:
            webhook_emit(
                workspace_id=self.campaign.workspace_id,
                event="message.failed",
                data={**_message_data(message, address, timezone.now()), "reason": reason},
                message_id=message.pk,
                endpoints=self.on_failed,
            )
        return "failed"

    def _postpone_group(self, address: str, until: datetime) -> None:
        """The campaign's other queued messages for `address`'s provider wait for its cool-down
        in the queue, in one UPDATE, instead of each being claimed and put back meanwhile (and
        taking chunk places from the domains that are not throttled)."""
        group = throttle.group_of(address)
        at_group = Q()
        for domain in throttle.domains_of(group):
            at_group |= Q(customer__email__iendswith="@" + domain)
        ledger.postpone(
            campaign_id=self.campaign.pk,
            where=at_group,
            until=until,
            reason=f"waits for {group} (throttled)",
        )


def _message_data(message: Message, address: str, at: datetime) -> dict:
    return {
        "message": message.token.hex,
        "campaign": message.campaign_id,
        "variant": message.variant.name if message.variant else None,
        "customer": message.customer_id,
        "address": address,
        "at": at.isoformat(),
    }
