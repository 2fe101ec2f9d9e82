"""Writing a launched campaign's ledger: audience -> eligibility -> holdout -> variant -> due time.

The audience is resolved in one SQL query (segment memberships, consent for the channel, the
frequency cap); each customer then gets one ledger row: skipped with the reason (no address,
no consent, suppressed, frequency cap, holdout) or queued with its variant and due time. The
draws are reproducible: they hash the campaign's recorded seed with the customer id, so the same
seed always puts the same customers in the holdout and in the same variant.
"""

import secrets
import uuid
from collections import Counter
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Subquery
from django.utils import timezone

from campaigns import schedule
from campaigns.channels import channel_for
from campaigns.decisions import allocation, targeting, timing
from campaigns.models import Campaign, Message, Suppression, Variant
from campaigns.services.delivery import CONSENT_CHANNEL, consent_allows
from campaigns.services.draws import pick_variant, unit  # noqa: F401 (also read from here)
from crm.bulk import insert_rows
from crm.models import Consent, Customer, Segment, SegmentMembership
from crm.services.segments import segment_refresh

COLUMNS = ("token", "campaign", "customer", "variant", "holdout", "ab_test", "state", "reason",
           "attempts", "send_at", "address", "provider_id", "revenue", "step", "propensity",
           "decision", "wave")  # fmt: skip


def audience(campaign: Campaign):
    """The audience as customers (id, e-mail, phone, time zone loaded; the others on access),
    each annotated with `consent_status` for the channel and, under a frequency cap, `recent`
    (messages sent within the cap's days). Instances rather than tuples so that the channel's
    own `address_of` gives the address, as it does at send time."""
    include = list(campaign.include_segments.all())
    exclude = list(campaign.exclude_segments.all())
    for segment in include + exclude:
        if segment.kind == Segment.Kind.RULES:
            segment_refresh(segment=segment)
    rows = Customer.objects.filter(
        workspace_id=campaign.workspace_id, erased_at__isnull=True
    ).filter(Exists(SegmentMembership.objects.filter(customer=OuterRef("pk"), segment__in=include)))
    if exclude:
        rows = rows.exclude(
            Exists(SegmentMembership.objects.filter(customer=OuterRef("pk"), segment__in=exclude))
        )
    return with_send_facts(campaign, rows)


def with_send_facts(campaign: Campaign, rows):
    """`rows` (customers) annotated with what deciding a send needs: `consent_status` for the
    campaign's channel and, under a frequency cap, `recent` (messages sent to them within the
    cap's days, by any campaign or journey)."""
    consent = Consent.objects.filter(
        customer=OuterRef("pk"), channel=CONSENT_CHANNEL[campaign.channel]
    ).values("status")[:1]
    rows = rows.annotate(consent_status=Subquery(consent))
    if campaign.frequency_cap:
        since = timezone.now() - timedelta(days=campaign.frequency_days)
        recent = (
            Message.objects.filter(customer=OuterRef("pk"), state=Message.State.SENT)
            .filter(sent_at__gte=since)
            .order_by()
            .values("customer")
            .annotate(n=Count("id"))
            .values("n")[:1]
        )
        rows = rows.annotate(recent=Subquery(recent))
    return rows.order_by("id").only("id", "email", "phone", "time_zone")


def skip_reason(campaign: Campaign, customer, address: str, suppressed: set) -> str:
    """Why `customer` (annotated by with_send_facts) gets no message of `campaign`, or ""."""
    if not address:
        return f"no {campaign.channel} address"
    if not consent_allows(campaign.consent_rule, customer.consent_status):
        return "no consent"
    if address in suppressed:
        return "address suppressed"
    if campaign.frequency_cap and (customer.recent or 0) >= campaign.frequency_cap:
        return f"frequency cap ({campaign.frequency_cap} in {campaign.frequency_days} days)"
    return ""


def _suppressed(campaign: Campaign) -> set:
    return set(
        Suppression.objects.filter(
            workspace_id=campaign.workspace_id, channel=campaign.channel
        ).values_list("address", flat=True)
    )


def _verdict(campaign: Campaign, customer, address: str, suppressed: set, who):
    """(why not sent or "", held out, the targeting's facts) for one audience member: the one
    decision the ledger writes and the launch's confirmation counts."""
    reason = skip_reason(campaign, customer, address, suppressed)
    holdout = not reason and unit(campaign.seed or 0, "holdout", customer.pk) < (
        campaign.holdout_percent / 100
    )
    decision: dict = {}
    if not reason:
        reason, decision = who.decide(customer.pk, holdout)
    return reason, holdout, decision


def launch_preview(*, campaign: Campaign, sample: int = 10) -> dict:
    """Who a launch of the draft `campaign` would send to now, as the ledger will decide it:
    the audience, how many get a message (after consent, suppression, the frequency cap,
    targeting and the holdout), how many do not and why, and the first `sample` recipients.

    The holdout is drawn from the campaign's seed, so a draft without one gets it here and
    keeps it (the launch uses a seed already recorded): the count shown is then the count the
    launch sends, as long as the audience and its consents do not change in between."""
    if campaign.seed is None:
        Campaign.objects.filter(pk=campaign.pk, seed__isnull=True).update(seed=secrets.randbits(48))
        campaign.refresh_from_db(fields=["seed"])
    suppressed = _suppressed(campaign)
    channel = channel_for(campaign.channel)
    records = list(audience(campaign))
    addresses = [channel.address_of(c) for c in records]
    eligible = [
        c.pk
        for c, address in zip(records, addresses, strict=True)
        if not skip_reason(campaign, c, address, suppressed)
    ]
    who = targeting.for_launch(campaign, eligible)
    not_sent: Counter = Counter()
    recipients, shown = 0, []
    for customer, address in zip(records, addresses, strict=True):
        reason, holdout, _ = _verdict(campaign, customer, address, suppressed, who)
        if holdout or reason:
            not_sent["holdout" if holdout else reason] += 1
            continue
        recipients += 1
        if len(shown) < sample:
            shown.append({"id": customer.pk, "address": address})
    return {
        "audience": len(records),
        "recipients": recipients,
        "not_sent": sorted(not_sent.items(), key=lambda kv: (-kv[1], kv[0])),
        "sample": shown,
    }


def build_ledger(*, campaign: Campaign, progress=None) -> dict:
    """Writes one row per audience member; does nothing if the ledger exists (a re-run)."""
    if Message.objects.filter(campaign=campaign).exists():
        return {"already_written": True}
    now = timezone.now()
    variants = list(campaign.variants.filter(status=Variant.Status.APPROVED).order_by("name"))
    suppressed = _suppressed(campaign)
    zones: dict[str, object] = {}
    default_tz = settings.CAMPAIGN_DEFAULT_TIME_ZONE
    seed = campaign.seed or 0
    channel = channel_for(campaign.channel)
    counts = {"audience": 0, "queued": 0, "holdout": 0, "ab_test": 0, "skipped": 0}
    sqlite = connection.vendor == "sqlite"

    def due_for(tz_name: str):
        if tz_name not in zones:
            zones[tz_name] = schedule.due_time(
                timing=campaign.timing,
                tz=schedule.zone(tz_name, default_tz),
                now=now,
                send_at=campaign.send_at,
                local_date=campaign.local_date,
                local_time=campaign.local_time,
                quiet_start=campaign.quiet_start,
                quiet_end=campaign.quiet_end,
            )
        return zones[tz_name]

    # Read whole before writing: on PostgreSQL the rows go in by COPY on the same connection,
    # which can run no other statement (progress reports included) until the COPY ends.
    records = list(audience(campaign))
    if progress:
        progress(40, f"writing {len(records):,} recipients")

    # Targeting ranks the eligible audience (top k% of those who can be sent to), so it is
    # given them, not the whole audience.
    eligible = [
        c.pk for c in records if not skip_reason(campaign, c, channel.address_of(c), suppressed)
    ]
    who = targeting.for_launch(campaign, eligible)
    which = allocation.for_launch(campaign, variants)
    when = timing.for_launch(campaign, records)

    def rows():
        for customer in records:
            customer_id = customer.pk
            counts["audience"] += 1
            # The address as the channel reads it at send time (stripped, lower-cased e-mail),
            # so a launch skips exactly who the send would skip and records the same address.
            address = channel.address_of(customer)
            reason, holdout, decision = _verdict(campaign, customer, address, suppressed, who)
            ab_test = bool(
                not reason
                and not holdout
                and campaign.ab_test_percent
                and unit(seed, "ab", customer_id) < campaign.ab_test_percent / 100
            )
            variant = propensity = wave = None
            if not reason and not holdout:
                variant, propensity, wave, facts = which.first(customer_id, ab_test)
                decision.update(facts)
            send_at = due_for(customer.time_zone or "")
            if not reason:
                send_at, facts = when.due(customer_id, send_at)
                decision.update(facts)
            state = Message.State.SKIPPED if reason or holdout else Message.State.QUEUED
            if holdout:
                reason = "holdout"
                counts["holdout"] += 1
            elif reason:
                counts["skipped"] += 1
            else:
                counts["queued"] += 1
                counts["ab_test"] += ab_test
            token = uuid.uuid4()
            yield (
                token.hex if sqlite else token,
                campaign.pk,
                customer_id,
                variant,
                holdout,
                ab_test,
                state,
                reason,
                0,
                send_at,
                address,
                "",
                0,
                "",
                propensity,
                orjson.dumps(decision).decode(),
                wave,
            )

    with transaction.atomic():
        insert_rows(Message, COLUMNS, rows())
    return counts
