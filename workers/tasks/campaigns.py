"""Campaign bookkeeping on the default queue: launching (writing the ledger) and the sweeper."""

from celery import shared_task
from celery.signals import worker_ready

from workers.tracking import tracked_task


@tracked_task()
def launch(run, progress) -> dict:
    from campaigns.models import Campaign, Message
    from campaigns.services.control import campaign_finish_if_done
    from campaigns.services.launch import build_ledger
    from workers.tasks.sends import queue_deliveries

    campaign = Campaign.objects.get(pk=run.params["campaign"])
    if campaign.status == Campaign.Status.CANCELLED:
        return {"cancelled": True}
    progress(5, "resolving the audience")
    counts = build_ledger(campaign=campaign, progress=progress)
    campaign.refresh_from_db()
    if campaign.status == Campaign.Status.CANCELLED:  # cancelled while the ledger was written
        Message.objects.filter(campaign=campaign, state=Message.State.QUEUED).update(
            state=Message.State.SKIPPED, reason="cancelled"
        )
        return counts
    # Nobody to send to, or every row skipped at launch: done now, with no sends to queue.
    if campaign_finish_if_done(campaign_id=campaign.pk, ledger_written=True):
        return counts
    progress(95, "queueing sends")
    queue_deliveries(campaign.pk)
    return counts


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> dict:
    from campaigns.services.sweep import sweep as run_sweep
    from campaigns.services.webhooks import pending_exists
    from workers.tasks.sends import deliver_webhooks, queue_deliveries

    result = run_sweep()
    for campaign_id in result["due"]:
        queue_deliveries(campaign_id)
    if pending_exists():
        deliver_webhooks.delay()
    return result


@worker_ready.connect
def _sweep_on_start(sender=None, **_) -> None:
    # A worker that starts after a crash picks up its predecessor's work without waiting for beat.
    sweep.delay()


@shared_task(acks_late=True, ignore_result=True)
def attribute_recent() -> int:
    """Attributes conversions for campaigns that sent within the last 90 days."""
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.models import Campaign
    from campaigns.services.results import attribute_conversions

    since = timezone.now() - timedelta(days=90)
    total = 0
    for campaign in Campaign.objects.filter(launched_at__gte=since):
        total += attribute_conversions(campaign=campaign)
    return total
