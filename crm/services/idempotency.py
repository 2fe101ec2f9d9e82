"""The stored answers of writes sent with an Idempotency-Key (crm.api.base.idempotent) are kept
IDEMPOTENCY_KEY_TTL_HOURS, then purged by the beat task (every hour), so a key is remembered
at least that long and at most an hour longer; afterwards the same key counts as new."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from crm.models import IdempotencyRecord

BATCH = 5000  # rows per DELETE: short transactions, no long lock on a busy table


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Deletes the records older than the TTL; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    expired = IdempotencyRecord.objects.filter(created_at__lt=cutoff)
    purged = 0
    while ids := list(expired.values_list("pk", flat=True)[:BATCH]):
        purged += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
    return purged
