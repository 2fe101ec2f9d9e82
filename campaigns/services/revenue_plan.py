"""A draft campaign's planned volume against the revenue forecast: how many it would send to
now, times what a message has brought the workspace lately, beside the forecast of all revenue
(with its 80% band) for the week it goes out. Read-only: nothing here refreshes a segment."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Exists, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.delivery import CONSENT_CHANNEL, OPTED_OUT
from crm.models import Consent, Customer, Forecast, SegmentMembership
from crm.models.forecasts import Frequency, Level, Measure
from crm.selectors.forecasts import active_version

RECENT_DAYS = 90
# Under this many messages sent lately, revenue per message is one lucky order away from double.
MIN_SENT = 100


@dataclass(frozen=True)
class RevenuePlan:
    recipients: int  # planned: the audience with an address and consent, less the holdout
    holdout_percent: float
    per_message: float | None  # attributed revenue per message sent in the last RECENT_DAYS
    sent_lately: int  # messages that figure rests on
    week: date  # the Monday of the send week
    forecast: tuple[float, float, float] | None  # total revenue that week: mean, lower, upper
    covered: tuple[date, date] | None  # the weeks the active forecast covers, first and last
    targeted: bool  # uplift targeting will send to fewer than planned here

    @property
    def planned(self) -> float | None:
        return None if self.per_message is None else self.recipients * self.per_message

    def share(self) -> tuple[float, float, float] | None:
        """The planned revenue as a share of the week's forecast: at the mean, and at the band's
        upper and lower ends (so smallest share first)."""
        if self.planned is None or self.forecast is None:
            return None
        mean, lower, upper = self.forecast
        if min(mean, lower, upper) <= 0:
            return None
        return self.planned / mean, self.planned / upper, self.planned / lower

    def sentences(self) -> list[str]:
        """The plan in plain words, one sentence a line."""
        lines = []
        holdout = f" after the {self.holdout_percent:g}% holdout" if self.holdout_percent else ""
        if self.per_message is None:
            lines.append(
                f"About {self.recipients:,} recipients{holdout}. Too few messages were sent in "
                f"the last {RECENT_DAYS} days ({self.sent_lately}, under {MIN_SENT}) to say "
                "what a message brings in."
            )
        else:
            lines.append(
                f"About {self.recipients:,} recipients{holdout} × {self.per_message:,.2f} revenue "
                f"per message (the last {RECENT_DAYS} days, {self.sent_lately:,} messages) ≈ "
                f"{self.planned:,.0f}. That is revenue attributed to messages, not all of it "
                "caused by them."
            )
        if self.targeted:
            lines.append("Uplift targeting will send to fewer than this.")
        week = f"the week of {self.week:%d %b %Y}"
        if self.forecast is None:
            if self.covered is None:
                lines.append(f"There is no revenue forecast yet to set it against for {week}.")
            else:
                first, last = self.covered
                lines.append(
                    f"The revenue forecast does not cover {week} (it runs from {first:%d %b %Y} to "
                    f"the week of {last:%d %b %Y})."
                )
            return lines
        mean, lower, upper = self.forecast
        lines.append(
            f"Forecast revenue for {week}, all sales: {mean:,.0f} "
            f"(80% band {lower:,.0f} to {upper:,.0f})."
        )
        share = self.share()
        if share is not None:
            at_mean, smallest, largest = share
            lines.append(
                f"This campaign would be about {at_mean:.1%} of that week's revenue "
                f"({smallest:.1%} to {largest:.1%} across the band)."
            )
        return lines


def send_day(campaign: Campaign, now: datetime) -> date:
    """The day the campaign goes out: its moment or local date, else today (launched now)."""
    if campaign.timing == Campaign.Timing.AT and campaign.send_at:
        return timezone.localtime(campaign.send_at, timezone.get_default_timezone()).date()
    if campaign.timing == Campaign.Timing.LOCAL and campaign.local_date:
        return campaign.local_date
    if campaign.send_at:
        return campaign.send_at.date()
    return now.date()


def planned_recipients(campaign: Campaign) -> int:
    """The audience as its segments' memberships stand now (not refreshed, unlike launch), with
    an address for the channel and the consent the campaign asks for, less the holdout share."""
    include = list(campaign.include_segments.values_list("pk", flat=True))
    if not include:
        return 0
    exclude = list(campaign.exclude_segments.values_list("pk", flat=True))
    rows = Customer.objects.filter(workspace_id=campaign.workspace_id, erased_at__isnull=True)
    rows = rows.filter(
        Exists(SegmentMembership.objects.filter(customer=OuterRef("pk"), segment__in=include))
    )
    if exclude:
        rows = rows.exclude(
            Exists(SegmentMembership.objects.filter(customer=OuterRef("pk"), segment__in=exclude))
        )
    if campaign.channel == "email":
        rows = rows.exclude(email__isnull=True).exclude(email="")
    elif campaign.channel == "sms":
        rows = rows.exclude(phone="")
    consent = Consent.objects.filter(
        customer=OuterRef("pk"), channel=CONSENT_CHANNEL[campaign.channel]
    ).values("status")[:1]
    rows = rows.annotate(consent_status=Subquery(consent))
    if campaign.consent_rule == Campaign.ConsentRule.OPT_IN:
        rows = rows.filter(consent_status=Consent.Status.SUBSCRIBED)
    else:
        rows = rows.filter(Q(consent_status__isnull=True) | ~Q(consent_status__in=OPTED_OUT))
    return round(rows.count() * (1 - campaign.holdout_percent / 100))


def revenue_per_message(workspace_id: int, now: datetime) -> tuple[float | None, int]:
    """(attributed revenue per message sent in the last RECENT_DAYS, or None under MIN_SENT
    messages; how many messages)."""
    sent = Message.objects.filter(
        campaign__workspace_id=workspace_id,
        state=Message.State.SENT,
        holdout=False,
        sent_at__gte=now - timedelta(days=RECENT_DAYS),
        sent_at__lte=now,
    )
    n = sent.count()
    if n < MIN_SENT:
        return None, n
    return float(sent.aggregate(total=Sum("revenue"))["total"] or 0) / n, n


def campaign_revenue_plan(*, campaign: Campaign, now: datetime | None = None) -> RevenuePlan:
    """The draft campaign's planned revenue against the forecast for its send week."""
    now = now or timezone.now()
    day = send_day(campaign, now)
    week = day - timedelta(days=day.weekday())
    per_message, sent_lately = revenue_per_message(campaign.workspace_id, now)
    forecast = covered = None
    version = active_version(campaign.workspace_id)
    if version is not None:
        weeks = Forecast.objects.filter(
            workspace_id=campaign.workspace_id,
            model_version=version,
            level=Level.TOTAL,
            key="",
            measure=Measure.REVENUE,
            frequency=Frequency.WEEK,
        )
        row = weeks.filter(period_start=week).values_list("mean", "lower", "upper").first()
        forecast = tuple(row) if row else None
        starts = sorted(weeks.values_list("period_start", flat=True))
        covered = (starts[0], starts[-1]) if starts else None
    return RevenuePlan(
        recipients=planned_recipients(campaign),
        holdout_percent=campaign.holdout_percent,
        per_message=per_message,
        sent_lately=sent_lately,
        week=week,
        forecast=forecast,
        covered=covered,
        targeted=campaign.targeting != Campaign.Targeting.EVERYONE,
    )
