"""Bounce and complaint rates, read from the ledger and the delivery reports.

A hard bounce is a message refused for good during the SMTP session (5xx at RCPT: the ledger
row is `failed`, never `sent`) or one a later report says bounced for good; a complaint is a
message a feedback report names. Rates are per message, not per report: a message reported
twice counts once. Bounce rate = hard bounces / attempted (sent + refused at RCPT for good);
complaint rate = complaints / sent.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from campaigns.channels.smtp import HARD_BOUNCES
from campaigns.models import (
    Campaign,
    DeliveryReport,
    Enrolment,
    Message,
    SenderProtection,
    SendingDomain,
)
from campaigns.models import protection as defaults

# How the SMTP channel words a refusal at RCPT (campaigns.channels.smtp._refused).
SESSION_HARD = Q(state=Message.State.FAILED) & Q(
    *[Q(reason__startswith=f"RCPT: {code} ") for code in sorted(HARD_BOUNCES)], _connector=Q.OR
)


@dataclass(frozen=True)
class Thresholds:
    breaker_on: bool
    min_sends: int
    hard_bounce_percent: float
    complaint_percent: float
    complaint_warning_percent: float


def thresholds_for(workspace_id: int) -> Thresholds:
    row = SenderProtection.objects.filter(workspace_id=workspace_id).first()
    if row is None:
        return Thresholds(
            True,
            defaults.DEFAULT_MIN_SENDS,
            defaults.DEFAULT_HARD_BOUNCE_PERCENT,
            defaults.DEFAULT_COMPLAINT_PERCENT,
            defaults.DEFAULT_COMPLAINT_WARNING_PERCENT,
        )
    return Thresholds(
        row.breaker_on,
        row.min_sends,
        row.hard_bounce_percent,
        row.complaint_percent,
        row.complaint_warning_percent,
    )


@dataclass(frozen=True)
class Rates:
    attempted: int  # sent + refused for good at RCPT
    sent: int
    hard_bounces: int  # messages: refused at RCPT, or a hard-bounce report came back
    soft_bounces: int  # messages with a soft-bounce report (and no hard one)
    complaints: int  # messages a feedback report names
    bounce_percent: float | None  # None: nothing attempted yet
    complaint_percent: float | None
    complaint_warning: bool  # complaints at or above the workspace's warning rate

    def as_dict(self) -> dict:
        return asdict(self)


def rates_of(messages: QuerySet, *, warning_percent: float) -> Rates:
    """The rates of a set of ledger rows (any filter of Message)."""
    sent = messages.filter(state=Message.State.SENT).count()
    refused = messages.filter(SESSION_HARD).count()
    reports = DeliveryReport.objects.filter(message__in=messages.values("pk"))
    hard_reported = set(reports.filter(kind="hard").values_list("message_id", flat=True))
    soft = (
        reports.filter(kind="soft")
        .exclude(message_id__in=hard_reported)
        .values("message_id")
        .distinct()
        .count()
    )
    complaints = reports.filter(kind="complaint").values("message_id").distinct().count()
    attempted = sent + refused
    hard = refused + len(hard_reported)
    bounce_percent = 100.0 * hard / attempted if attempted else None
    complaint_percent = 100.0 * complaints / sent if sent else None
    return Rates(
        attempted=attempted,
        sent=sent,
        hard_bounces=hard,
        soft_bounces=soft,
        complaints=complaints,
        bounce_percent=_round(bounce_percent),
        complaint_percent=_round(complaint_percent),
        complaint_warning=complaint_percent is not None and complaint_percent >= warning_percent,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def campaign_rates(*, campaign: Campaign, since: datetime | None = None) -> Rates:
    """A campaign's rates; with `since`, only messages claimed from then on (the breaker's
    window after staff resumed a campaign it paused)."""
    messages = Message.objects.filter(campaign_id=campaign.pk)
    if since is not None:
        messages = messages.filter(claimed_at__gte=since)
    warning = thresholds_for(campaign.workspace_id).complaint_warning_percent
    return rates_of(messages, warning_percent=warning)


def journey_rates(*, journey) -> Rates:
    """The rates of every message a journey's send steps wrote."""
    enrolments = Enrolment.objects.filter(journey_id=journey.pk).values("pk")
    messages = Message.objects.filter(enrolment_id__in=enrolments)
    warning = thresholds_for(journey.workspace_id).complaint_warning_percent
    return rates_of(messages, warning_percent=warning)


def _from_domain(from_email: str) -> str:
    return (from_email or settings.DEFAULT_FROM_EMAIL).rpartition("@")[2].strip(" >").lower()


def sending_domain_rates(*, sending_domain: SendingDomain) -> Rates:
    """The rates of the workspace's mail from this domain or its subdomains (the campaigns
    whose From address, or the default From address, is there)."""
    domain = sending_domain.domain
    campaigns = Campaign.objects.filter(workspace_id=sending_domain.workspace_id, channel="email")
    ids = [
        pk
        for pk, from_email in campaigns.values_list("pk", "from_email")
        if (d := _from_domain(from_email)) == domain or d.endswith("." + domain)
    ]
    messages = Message.objects.filter(campaign_id__in=ids)
    warning = thresholds_for(sending_domain.workspace_id).complaint_warning_percent
    return rates_of(messages, warning_percent=warning)
