"""crm.api with its Redis server stopped (a real server, killed): reads and writes keep working,
the rate limiter lets requests through and says so once, and a task that could not be queued
stays a `queued` run that the run sweeper sends once Redis is back."""

import logging
import os
import signal
import time

import pytest
import redis
from django.utils import timezone

from crm.models import Customer, Product, Recommendation
from crm.services import segments as segment_services
from tests.crm.factories import client_for, seed
from workers import sweeper
from workers.models import ModelVersion, TaskRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_api_reads_and_writes_while_redis_is_down(workspace, own_redis, caplog):
    api = client_for(workspace)
    assert api.get("/api/v1/customers").status_code == 200  # throttled through Redis: it is up
    # A rules segment, so that new events queue a membership refresh after they commit.
    rules = {"event": "view", "count": {"op": "gte", "value": 1}}
    segment = segment_services.segment_save(workspace=workspace, name="viewers", rules=rules)
    buyer = Customer.objects.get(pk=seed(workspace)["customer"])
    product = Product.objects.get(workspace=workspace, sku="P1")
    version = ModelVersion.objects.create(
        workspace=workspace,
        family="recommend.ease",
        version=1,
        status="active",
        params={"popular": [product.pk]},
    )
    Recommendation.objects.create(
        workspace=workspace,
        customer=buyer,
        products=[[product.pk, 1.0]],
        model_version=version,
        computed_at=timezone.now(),
    )
    newcomer = Customer.objects.create(workspace=workspace, email="new@x.io")
    answers = {}
    for customer, source in ((buyer, "personal"), (newcomer, "popular")):
        answers[customer.pk] = api.get(f"/api/v1/customers/{customer.pk}/recommendations").json()
        assert answers[customer.pk]["source"] == source and answers[customer.pk]["results"]
    own_redis.stop()

    caplog.set_level(logging.WARNING)
    for _ in range(5):
        assert api.get("/api/v1/customers").status_code == 200
    throttle_warnings = [r for r in caplog.records if r.name == "crm.api.auth"]
    assert len(throttle_warnings) == 1, [r.getMessage() for r in throttle_warnings]
    assert "rate limit" in throttle_warnings[0].getMessage()

    rows = [{"source": "shop", "external_id": str(i), "email": f"u{i}@x.io"} for i in range(3)]
    written = api.post("/api/v1/customers/bulk", {"rows": rows}, format="json")
    assert written.status_code == 200 and written.json()["created"] == 3
    customer = Customer.objects.get(workspace=workspace, identities__external_id="0")
    events = [{"customer": customer.pk, "type": "view", "occurred_at": "2026-11-30T10:00:00Z"}]
    assert api.post("/api/v1/events/bulk", {"rows": events}, format="json").status_code == 200

    # The cached answers are out of reach: the database's answers, the same ones.
    for pk, answer in answers.items():
        again = api.get(f"/api/v1/customers/{pk}/recommendations")
        assert again.status_code == 200 and again.json() == answer
    product.name = "Teapot, blue"
    product.save()  # moves the cached answers' generation on: Redis is down, the write goes on

    started = api.post(f"/api/v1/segments/{segment.pk}/refresh")
    assert started.status_code == 202
    run = TaskRun.objects.get(pk=started.json()["task"])
    assert run.status == TaskRun.Status.QUEUED and run.enqueued_at is None and run.sends == 0

    own_redis.start()  # empty: nothing was queued while it was down
    assert sweeper.sweep_runs()["sent"] >= 1
    run.refresh_from_db()
    assert run.status == TaskRun.Status.QUEUED and run.sends == 1 and run.enqueued_at
    assert redis.Redis.from_url(own_redis.url).llen("default") >= 1  # the message is there now


def test_a_redis_that_hangs_costs_seconds_not_the_request(workspace, own_redis):
    """A stopped (SIGSTOP) server accepts connections and never answers: every call waits for
    its timeout. Reads pay it once per few seconds, and a write that starts a run answers."""
    api = client_for(workspace)
    rules = {"event": "view", "count": {"op": "gte", "value": 1}}
    segment = segment_services.segment_save(workspace=workspace, name="viewers", rules=rules)
    assert api.get("/api/v1/customers").status_code == 200
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert all(api.get("/api/v1/customers").status_code == 200 for _ in range(10))
        assert time.monotonic() - started < 8  # one 2 s timeout, not ten

        started = time.monotonic()
        answer = api.post(f"/api/v1/segments/{segment.pk}/refresh")
        assert answer.status_code == 202 and time.monotonic() - started < 20
        run = TaskRun.objects.get(pk=answer.json()["task"])
        assert run.status == TaskRun.Status.QUEUED and run.enqueued_at is None
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    assert sweeper.sweep_runs()["sent"] == 1
    assert redis.Redis.from_url(own_redis.url).llen("default") == 1
