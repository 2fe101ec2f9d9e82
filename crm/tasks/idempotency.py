"""The hourly purge of stored Idempotency-Key answers, on the `default` queue."""

from crm.services.idempotency import idempotency_records_purge
from workers import queues
from workers.retry import retrying
from workers.runs import queued_task


@queued_task(queue=queues.DEFAULT, time_limit=10 * 60, acks_late=True, ignore_result=True)
def purge_idempotency_records() -> int:
    """Beat, hourly: stored Idempotency-Key answers past IDEMPOTENCY_KEY_TTL_HOURS."""
    return retrying(idempotency_records_purge, atomic=False)
