"""The circuit breaker: a broadcast whose early bounce or complaint rate passes its workspace's
thresholds pauses by itself.

The pause is the platform's own (status `paused`, as staff's pause button sets it): the rows
still queued wait in the ledger, the ones in flight finish, and staff's resume carries on from
there, each message still sent once. After a resume the breaker judges only the messages
claimed since, again from `min_sends` on, so the same early figures do not pause it again.
"""

import time

from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignPause
from campaigns.protection import rates

ACTIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING)


def judge(figures: rates.Rates, limits: rates.Thresholds) -> str:
    """Why these figures must pause a campaign ("" when they need not)."""
    if not limits.breaker_on or figures.attempted < limits.min_sends:
        return ""
    if figures.bounce_percent is not None and figures.bounce_percent > limits.hard_bounce_percent:
        return (
            f"hard bounces {figures.bounce_percent:.1f}% of {figures.attempted} attempted "
            f"(more than {limits.hard_bounce_percent:g}%)"
        )
    if (
        figures.complaint_percent is not None
        and figures.complaint_percent > limits.complaint_percent
    ):
        return (
            f"complaints {figures.complaint_percent:.2f}% of {figures.sent} sent "
            f"(more than {limits.complaint_percent:g}%)"
        )
    return ""


def window_start(campaign_id: int):
    """Where the breaker's count starts: the last lifted pause, else the beginning."""
    last = (
        CampaignPause.objects.filter(campaign_id=campaign_id, lifted_at__isnull=False)
        .order_by("-lifted_at")
        .values_list("lifted_at", flat=True)
        .first()
    )
    return last


def breaker_check(*, campaign: Campaign) -> CampaignPause | None:
    """Pauses `campaign` if its figures (since the last resume) pass the thresholds; returns
    the pause it made, or None. Of several workers checking at once, one pauses."""
    if campaign.kind != Campaign.Kind.BROADCAST:
        return None  # a journey's message trickles out one enrolment at a time
    limits = rates.thresholds_for(campaign.workspace_id)
    if not limits.breaker_on:
        return None
    figures = rates.campaign_rates(campaign=campaign, since=window_start(campaign.pk))
    reason = judge(figures, limits)
    if not reason:
        return None
    with transaction.atomic():
        paused = Campaign.objects.filter(pk=campaign.pk, status__in=ACTIVE).update(
            status=Campaign.Status.PAUSED
        )
        if not paused:
            return None
        return CampaignPause.objects.create(
            campaign_id=campaign.pk, reason=reason[:300], figures=figures.as_dict()
        )


def breaker_lift(*, campaign_id: int) -> int:
    """Marks the breaker's open pauses of a campaign lifted (staff resumed it)."""
    return CampaignPause.objects.filter(campaign_id=campaign_id, lifted_at__isnull=True).update(
        lifted_at=timezone.now()
    )


def pause_shown(campaign: Campaign) -> dict | None:
    """What the admin and the API show of a breaker pause in force: reason, figures, when."""
    if campaign.status != Campaign.Status.PAUSED:
        return None
    row = (
        CampaignPause.objects.filter(campaign_id=campaign.pk, lifted_at__isnull=True)
        .values("reason", "figures", "created_at")
        .first()
    )
    if row is None:
        return None
    return {"by": "circuit breaker", **row, "created_at": row["created_at"].isoformat()}


class Guard:
    """The breaker as a deliver task runs it: judged after every `every` sends, at most every
    `min_seconds` (each judgement counts the campaign's rows: at 1,000 messages a second a
    check every 20 sends would count a 100,000-row ledger 50 times a second), so a bad list
    stops within a few dozen messages of passing the threshold, not a chunk later."""

    def __init__(self, campaign: Campaign, every: int = 20, min_seconds: float = 0.5) -> None:
        self.campaign = campaign
        self.every = every
        self.min_seconds = min_seconds
        self.on = campaign.kind == Campaign.Kind.BROADCAST and (
            rates.thresholds_for(campaign.workspace_id).breaker_on
        )
        self.since_check = 0
        self.checked_at = float("-inf")
        self.tripped = False

    def after_send(self) -> bool:
        """Counts one attempt; True once the campaign must stop (paused by us or by anyone)."""
        if not self.on or self.tripped:
            return self.tripped
        self.since_check += 1
        if self.since_check < self.every or time.monotonic() - self.checked_at < self.min_seconds:
            return False
        self.since_check, self.checked_at = 0, time.monotonic()
        breaker_check(campaign=self.campaign)
        status = Campaign.objects.filter(pk=self.campaign.pk).values_list("status", flat=True)
        self.tripped = status.first() not in ACTIVE
        return self.tripped


def campaign_health(campaign: Campaign) -> dict:
    """What the admin and the API show of a campaign's sender health: its bounce and complaint
    rates (with the warning), the thresholds they are judged against, and a breaker pause in
    force (or None)."""
    limits = rates.thresholds_for(campaign.workspace_id)
    return {
        **rates.campaign_rates(campaign=campaign).as_dict(),
        "thresholds": {
            "breaker_on": limits.breaker_on,
            "min_sends": limits.min_sends,
            "hard_bounce_percent": limits.hard_bounce_percent,
            "complaint_percent": limits.complaint_percent,
            "complaint_warning_percent": limits.complaint_warning_percent,
        },
        "paused_by_breaker": pause_shown(campaign),
    }
