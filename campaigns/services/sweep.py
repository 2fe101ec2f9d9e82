"""The sweeper (beat, every CAMPAIGN_SWEEP_SECONDS; and when a worker starts): the database is
the source of truth, the broker only carries nudges. It records sends whose commit the database
lost (campaigns.unrecorded), returns stale claims of dead workers to
the queue, picks A/B winners whose wait is over, marks finished campaigns sent, and names the
campaigns that have due rows so that deliver tasks are queued for them (again, if a broker
restart lost the first ones)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from campaigns import ledger, unrecorded
from campaigns.models import Campaign, Message
from campaigns.services.abtest import ab_decide_due
from campaigns.services.lifecycle import campaign_finish_if_done

LIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED)
ACTIVE = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING)


def sweep() -> dict:
    now = timezone.now()
    live = list(Campaign.objects.filter(status__in=LIVE).values_list("pk", "status"))
    # Sends whose commit the database lost are recorded first: releasing their claims would
    # send them again.
    recorded = unrecorded.settle_all()
    released = ledger.release_stale(
        older_than=now - timedelta(seconds=settings.CAMPAIGN_CLAIM_LEASE_SECONDS),
        campaign_ids=[pk for pk, _ in live],
    )
    active = [pk for pk, status in live if status in ACTIVE]
    decided = [pk for pk in active if ab_decide_due(campaign_id=pk, now=now)]
    due = sorted(
        set(
            Message.objects.filter(
                campaign_id__in=active,
                state=Message.State.QUEUED,
                send_at__lte=now,
                variant__isnull=False,
            )
            .values_list("campaign_id", flat=True)
            .distinct()
        )
    )
    finished = [pk for pk in active if pk not in due and campaign_finish_if_done(campaign_id=pk)]
    return {
        "recorded": recorded,
        "released": released,
        "due": due,
        "ab_decided": decided,
        "finished": finished,
    }
