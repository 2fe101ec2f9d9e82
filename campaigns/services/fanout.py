"""Queues `deliver` tasks for a campaign. Any number may run at once (delivery claims rows with
SKIP LOCKED), so the fan-out is CAMPAIGN_FANOUT; each expires unconsumed, because the sweeper
queues fresh ones for a campaign that still has due rows."""

from django.conf import settings
from django.db import transaction

from workers.services import task_named

DELIVER = "campaigns.tasks.deliver"


def deliveries_queue(campaign_id: int, count: int | None = None) -> None:
    deliver = task_named(DELIVER)
    expires = max(60, 4 * settings.CAMPAIGN_SWEEP_SECONDS)
    for _ in range(count or settings.CAMPAIGN_FANOUT):
        deliver.apply_async((campaign_id,), expires=expires)


def deliveries_queue_on_commit(campaign_id: int) -> None:
    """deliveries_queue once the current transaction commits (a resume, a resend)."""
    task_named(DELIVER)  # an unknown name fails the caller, not the commit hook
    transaction.on_commit(lambda: deliveries_queue(campaign_id))
