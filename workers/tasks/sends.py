"""Send tasks on the `sends` queue: deliver a campaign's due messages, post webhooks."""

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(campaign_id: int) -> dict:
    from campaigns.services.delivery import deliver as run

    result = run(campaign_id=campaign_id)
    if result.get("more"):
        queue_deliveries(campaign_id, count=1)
    return result


def queue_deliveries(campaign_id: int, count: int | None = None) -> None:
    """Queues deliver tasks; they expire unconsumed, because the sweeper queues fresh ones."""
    expires = max(60, 4 * settings.CAMPAIGN_SWEEP_SECONDS)
    for _ in range(count or settings.CAMPAIGN_FANOUT):
        deliver.apply_async((campaign_id,), expires=expires)


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhooks() -> dict:
    from campaigns.services.webhooks import deliver_due

    return deliver_due()
