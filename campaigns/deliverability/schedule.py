"""Each active bounce mailbox has a beat entry of its own (django-celery-beat's database
scheduler, which beat reads while it runs: a mailbox added in the admin is polled without a
restart), named after it and timed by its poll_seconds."""

import json

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns.models.deliverability import BounceMailbox

TASK = "campaigns.tasks.poll_bounce_mailbox"


def entry_name(mailbox_id: int) -> str:
    return f"bounce-mailbox-{mailbox_id}"


def mailbox_schedule(*, mailbox: BounceMailbox) -> PeriodicTask:
    """Writes (or rewrites) the mailbox's beat entry; disabled while the mailbox is not active."""
    every, _ = IntervalSchedule.objects.get_or_create(
        every=mailbox.poll_seconds, period=IntervalSchedule.SECONDS
    )
    entry, _ = PeriodicTask.objects.update_or_create(
        name=entry_name(mailbox.pk),
        defaults={
            "task": TASK,
            "interval": every,
            "kwargs": json.dumps({"mailbox_id": mailbox.pk}),
            "enabled": mailbox.active,
            # A poll older than its interval is pointless: the next one reads the same mailbox.
            "expire_seconds": mailbox.poll_seconds,
        },
    )
    return entry


def mailbox_unschedule(*, mailbox_id: int) -> None:
    PeriodicTask.objects.filter(name=entry_name(mailbox_id)).delete()
