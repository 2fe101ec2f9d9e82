"""crm.services.churn: churn risk trained by a real worker on orders, stored with reasons, usable in
segments."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from crm import segments, services
from crm.models import CustomerScore
from crm.services import churn
from crm.tasks.models import train_churn
from tests.conftest import wait_until
from workers.models import ModelVersion, TaskRun
from workers.services import task_run_start

END = datetime(2026, 6, 1, tzinfo=UTC)


def seed_shop(workspace, n: int = 120) -> list[int]:
    """Regulars buy every 20 days right up to the end; lapsers stopped long ago."""
    services.product_bulk_upsert(workspace=workspace, rows=[{"sku": "A", "name": "A"}])
    rng = np.random.default_rng(3)
    ids, orders = [], []
    for i in range(n):
        pk = services.customer_bulk_upsert(workspace=workspace, rows=[{"email": f"c{i}@x.io"}]).ids[
            0
        ]
        ids.append(pk)
        regular = i % 2 == 0
        last = 5 if regular else 150 + int(rng.integers(0, 100))
        for j in range(int(rng.integers(2, 6))):
            day = END - timedelta(days=last + 20 * j)
            orders.append(
                {
                    "external_id": f"{i}-{j}",
                    "customer": pk,
                    "placed_at": day.isoformat(),
                    "lines": [{"sku": "A", "quantity": 1, "unit_price": 10}],
                }
            )
    assert not services.order_bulk_upsert(workspace=workspace, rows=orders).errors
    return ids


@pytest.mark.django_db(transaction=True)
def test_worker_trains_churn_and_scores_with_reasons(workspace, live_worker):
    ids = seed_shop(workspace)
    run = task_run_start(task=train_churn, workspace=workspace, params={"horizon_days": 60})
    wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=90)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(pk=run.result["model_version"])
    assert version.status == "active" and version.metrics["auc"] > 0.8
    scores = {s.customer_id: s for s in CustomerScore.objects.filter(kind="churn_risk")}
    assert len(scores) == len(ids)
    regular, lapser = scores[ids[0]], scores[ids[1]]
    assert lapser.value > regular.value
    assert lapser.reasons and lapser.reasons[0]["feature"] in churn.FEATURES
    risky = segments.customers_matching(
        workspace, {"score": "churn_risk", "op": "gt", "value": 0.5}
    ).values_list("pk", flat=True)
    assert ids[1] in set(risky) and ids[0] not in set(risky)


@pytest.mark.django_db
def test_features_count_each_order_once(workspace):
    seed_shop(workspace, n=4)
    ids, X = churn.customer_features(workspace, END)
    spend = X[:, churn.FEATURES.index("spend")]
    orders = X[:, churn.FEATURES.index("orders")]
    assert np.allclose(spend, orders * 10)  # one line of 10 per order, no join inflation


@pytest.mark.django_db
def test_rfm_groups_become_segments(workspace):
    from crm.models import Segment
    from crm.services.rfm import rfm_segments_refresh

    ids = seed_shop(workspace, n=40)
    counts = rfm_segments_refresh(workspace=workspace)
    assert sum(counts.values()) == len(ids)
    segment = Segment.objects.get(workspace=workspace, name="RFM: Champions")
    assert segment.kind == "static" and segment.member_count == counts["Champions"] > 0
    assert rfm_segments_refresh(workspace=workspace) == counts  # rebuilt, not doubled
    assert segment.memberships.count() == counts["Champions"]
