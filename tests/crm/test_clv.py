"""crm.services.clv: lifetime value trained by a real worker on orders: the purchase model chosen on
the latest weeks, scores with the figures behind them, usable in segments; erased customers left
out."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from crm import segments, services
from crm.models import CustomerScore
from crm.services import clv
from crm.services.privacy import privacy_erase
from crm.tasks.models import train_clv
from tests.conftest import wait_until
from workers.models import ModelVersion, TaskRun
from workers.services import task_run_start

END = datetime(2026, 6, 1, tzinfo=UTC)


def seed_shop(workspace, n: int = 240) -> list[int]:
    """Pareto/NBD customers (gamma-distributed purchase and dropout rates) who arrived over two
    years; those whose first basket was big buy four times as often. Returns their ids."""
    services.product_bulk_upsert(workspace=workspace, rows=[{"sku": "A", "name": "A"}])
    rng = np.random.default_rng(5)
    rows = [{"email": f"c{i}@x.io"} for i in range(n)]
    created = services.customer_bulk_upsert(workspace=workspace, rows=rows).ids
    ids = [created[i] for i in range(n)]
    orders = []
    for i, pk in enumerate(ids):
        big = i % 2 == 0
        first = END - timedelta(days=int(rng.integers(60, 730)))
        rate = rng.gamma(2.0, 0.05) * (4 if big else 1) / 7  # purchases per day while active
        leaves = first + timedelta(days=float(rng.exponential(7 / rng.gamma(2.0, 0.01))))
        days, day = [first], first
        while True:
            day += timedelta(days=float(rng.exponential(1 / rate)))
            if day >= min(leaves, END):
                break
            days.append(day)
        for j, placed in enumerate(days):
            quantity = (8 if big else 1) if j == 0 else int(rng.integers(1, 4))
            line = {"sku": "A", "quantity": quantity, "unit_price": 10}
            orders.append(
                {
                    "external_id": f"{i}-{j}",
                    "customer": pk,
                    "placed_at": placed.isoformat(),
                    "lines": [line],
                }
            )
    assert not services.order_bulk_upsert(workspace=workspace, rows=orders).errors
    return ids


@pytest.mark.django_db(transaction=True)
def test_worker_chooses_a_purchase_model_and_scores_every_buyer(workspace, live_worker):
    ids = seed_shop(workspace)
    erased = ids[-1]
    privacy_erase(customer=workspace.customers.get(pk=erased), actor="test")
    run = task_run_start(task=train_clv, workspace=workspace, params={"horizon_weeks": 52})
    wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=120)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(pk=run.result["model_version"])
    metrics = version.metrics
    assert version.status == "active" and version.params["model"] == "auto"
    assert set(metrics["candidates"]) == set(clv.MODELS)
    best = min(clv.MODELS, key=lambda name: metrics["candidates"][name]["check_mae"])
    assert (
        metrics["model"] == best
        and metrics["check_mae"] == metrics["candidates"][best]["check_mae"]
    )
    assert metrics["customers"] == len(ids) - 1  # the erased customer is not in the data

    clv_scores = {s.customer_id: s for s in CustomerScore.objects.filter(kind="clv_12m")}
    alive = {s.customer_id: s.value for s in CustomerScore.objects.filter(kind="p_alive")}
    assert set(clv_scores) == set(alive) == set(ids) - {erased}
    assert all(0 <= p <= 1 for p in alive.values())
    top = max(clv_scores.values(), key=lambda s: s.value)
    features = {r["feature"] for r in top.reasons}
    assert top.value > 0 and features >= {"expected_purchases", "expected_order_value"}
    big = np.mean([clv_scores[pk].value for pk in ids[:-1:2]])
    small = np.mean([clv_scores[pk].value for pk in ids[1:-1:2]])
    assert big > 2 * small
    threshold = float(np.median([s.value for s in clv_scores.values()]))
    valuable = set(
        segments.customers_matching(
            workspace, {"score": "clv_12m", "op": "gt", "value": threshold}
        ).values_list("pk", flat=True)
    )
    assert valuable == {pk for pk, s in clv_scores.items() if s.value > threshold}


@pytest.mark.django_db
def test_first_order_covariates_find_the_effect(workspace):
    seed_shop(workspace)
    version = clv.clv_train(workspace=workspace, model="pareto_nbd_covariates")
    effects = version.metrics["first_order_effects"]["purchase"]  # [value, items], standardised
    assert version.metrics["model"] == "pareto_nbd_covariates"
    assert effects[0] + effects[1] > 0.3  # a big first basket: more purchases
    data = clv.purchase_summary(workspace, END + timedelta(days=1))
    assert np.allclose(data["z"][:2, 1], np.log1p([8, 1]))


@pytest.mark.django_db
def test_an_unknown_model_is_refused(workspace):
    with pytest.raises(ValueError, match="model must be one of"):
        clv.clv_train(workspace=workspace, model="magic")
