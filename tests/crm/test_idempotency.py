"""crm.services.idempotency and its task: stored Idempotency-Key answers live
IDEMPOTENCY_KEY_TTL_HOURS, then the hourly beat task purges them and the same key counts as new."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import IdempotencyRecord
from crm.tasks.idempotency import purge_idempotency_records
from tests.crm.factories import client_for

pytestmark = pytest.mark.django_db


def test_answers_older_than_the_ttl_are_purged_and_the_key_is_new_again(workspace, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    api = client_for(workspace)
    rows = [{"source": "shop", "external_id": "1", "email": "a@x.io"}]
    headers = {"HTTP_IDEMPOTENCY_KEY": "batch-1"}
    assert api.post("/api/v1/customers/bulk", {"rows": rows}, **headers).status_code == 200
    api.post("/api/v1/customers/bulk", {"rows": rows}, HTTP_IDEMPOTENCY_KEY="batch-2")
    other = {"rows": rows + [{"email": "b@x.io"}]}
    assert api.post("/api/v1/customers/bulk", other, **headers).status_code == 422  # remembered

    IdempotencyRecord.objects.filter(key="batch-1").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert purge_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["batch-2"]
    again = api.post("/api/v1/customers/bulk", other, **headers)
    assert again.status_code == 200 and again.json()["created"] == 1
    assert "Idempotent-Replayed" not in again


def test_the_purge_runs_on_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["idempotency-purge"]
    assert entry["task"] == purge_idempotency_records.name
    assert settings.IDEMPOTENCY_KEY_TTL_HOURS == 24
