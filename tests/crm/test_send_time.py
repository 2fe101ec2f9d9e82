"""crm.services.send_time: each customer's best local hour (CustomerScore "best_hour") from the
hours, in their own zone, at which they clicked, converted and opened (machine opens left out),
computed by a real worker on the `ml` queue."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.utils import timezone

from crm.models import Customer, CustomerScore, Event
from crm.services import send_time, training
from tests.conftest import wait_until
from tests.crm.factories import CustomerFactory
from workers.models import TaskRun

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"]


def click_history(workspace, n: int = 80, events: int = 8, seed: int = 0) -> dict[int, int]:
    """Customers spread over ZONES, each clicking (and sometimes buying) at their own preferred
    local hour, give or take an hour, on different days. Returns {customer id: that hour}."""
    rng = np.random.default_rng(seed)
    today = timezone.now().astimezone(ZoneInfo("UTC")).date()
    truth, rows = {}, []
    for i in range(n):
        zone = ZONES[i % len(ZONES)]
        customer = CustomerFactory(workspace=workspace, time_zone=zone)
        hour = int(rng.integers(0, 24))
        truth[customer.pk] = hour
        for j in range(events):
            day = today - timedelta(days=3 + 4 * j)
            local_hour = (hour + int(rng.choice([-1, 0, 0, 0, 1]))) % 24
            at = datetime(day.year, day.month, day.day, local_hour, int(rng.integers(0, 60)))
            kind = "purchase" if j % 4 == 3 else "email_click"
            rows.append(
                Event(
                    workspace=workspace,
                    customer=customer,
                    type=kind,
                    occurred_at=at.replace(tzinfo=ZoneInfo(zone)),
                    properties={"user_agent": "Mozilla/5.0 (Macintosh) Safari/605.1.15"},
                )
            )
    Event.objects.bulk_create(rows)
    return truth


def distance(a: int, b: int) -> int:
    return min(abs(a - b) % 24, 24 - abs(a - b) % 24)


@pytest.mark.django_db(transaction=True)
def test_worker_recovers_each_customers_local_hour_in_several_zones(workspace, live_worker):
    truth = click_history(workspace)
    lonely = CustomerFactory(workspace=workspace, time_zone="Asia/Tokyo")
    Event.objects.create(
        workspace=workspace,
        customer=lonely,
        type="email_click",
        occurred_at=timezone.now() - timedelta(days=1),
    )
    run = training.training_start(workspace=workspace, model="send_time")
    assert run.queue == "ml"
    wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=90)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.progress == 100
    assert run.result["customers"] == len(truth) + 1
    scores = {s.customer_id: s for s in CustomerScore.objects.filter(kind="best_hour")}
    confident = [c for c in truth if not _fact(scores[c], "thin")["value"]]
    assert len(confident) >= 0.9 * len(truth)
    near = [distance(int(scores[c].value), truth[c]) <= 1 for c in confident]
    assert np.mean(near) >= 0.9
    one = scores[confident[0]]
    assert _fact(one, "clicks_at_hour")["count"] >= 1
    assert 0 < _fact(one, "own_data_weight")["value"] < 1
    assert len(_fact(one, "hour_profile")["value"]) == 24
    # One click decides nothing: thin, the workspace's profile weighing more than the click.
    assert _fact(scores[lonely.pk], "thin")["value"] is True
    assert _fact(scores[lonely.pk], "own_data_weight")["value"] < 0.5


def _fact(score: CustomerScore, feature: str) -> dict:
    return next(r for r in score.reasons if r["feature"] == feature)


@pytest.mark.django_db
def test_a_thin_workspace_stores_no_best_hours_and_erased_customers_lose_theirs(workspace):
    truth = click_history(workspace, n=3, events=2)
    result = send_time.best_hours_compute(workspace=workspace)
    assert result["workspace_hour"] is None and result["scored"] == 0
    assert not CustomerScore.objects.filter(kind="best_hour").exists()
    click_history(workspace, n=40, events=6, seed=1)
    assert send_time.best_hours_compute(workspace=workspace)["scored"] >= 40
    gone = next(iter(truth))
    Customer.objects.filter(pk=gone).update(erased_at=timezone.now())
    send_time.best_hours_compute(workspace=workspace)
    assert not CustomerScore.objects.filter(customer_id=gone, kind="best_hour").exists()
    with pytest.raises(ValueError):
        send_time.best_hours_compute(workspace=workspace, days=10**9)


@pytest.mark.django_db
def test_workspaces_are_sealed(workspace, other_workspace):
    click_history(other_workspace, n=40, events=6)
    result = send_time.best_hours_compute(workspace=workspace)
    assert result["customers"] == 0
    assert not CustomerScore.objects.filter(workspace=workspace).exists()


def test_the_nightly_run_recomputes_every_workspace_that_has_best_hours(workspace, other_workspace):
    from crm.tasks.models import send_time_nightly

    customer = CustomerFactory(workspace=workspace)
    CustomerScore.objects.create(
        workspace=workspace, customer=customer, kind="best_hour", value=9,
        computed_at=timezone.now(),
    )  # fmt: skip
    assert training.send_time_due() == 1
    runs = TaskRun.objects.filter(kind="crm.tasks.models.send_time")
    assert [r.workspace_id for r in runs] == [workspace.pk]
    assert send_time_nightly.name == "crm.tasks.models.send_time_nightly"
