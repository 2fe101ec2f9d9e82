"""Churn risk on the platform: behaviour features from orders, a label from what happened next,
LightGBM with reasons, and a `churn_risk` score per customer that segment rules can use."""

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Count, IntegerField, Max, Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from sklearn.metrics import roc_auc_score

from crm.models import Customer, CustomerScore, Order, OrderLine, Workspace
from crm.services.scores import scores_upsert
from marketing_ai.ml import registry
from marketing_ai.ml.predict.churn import ChurnModel
from workers import services as run_services
from workers.models import ModelVersion, TaskRun

FAMILY = "predict.churn"
SCORE_KIND = "churn_risk"
FEATURES = ["recency_days", "tenure_days", "orders", "orders_90d", "spend", "spend_90d",
            "avg_order_value", "returns", "products"]  # fmt: skip


def customer_features(workspace: Workspace, at: datetime) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, features) for live customers with at least one order before `at`,
    from their orders up to `at` only: one aggregate query."""
    since_90 = at - timedelta(days=90)
    before = Q(orders__placed_at__lt=at, orders__status=Order.Status.PLACED)
    sales = before & Q(orders__kind=Order.Kind.ORDER)
    rows = (
        Customer.objects.filter(workspace=workspace, erased_at__isnull=True)
        .annotate(
            last=Max("orders__placed_at", filter=sales),
            first=Min("orders__placed_at", filter=sales),
            n=Count("orders", filter=sales, distinct=True),
            n90=Count("orders", filter=sales & Q(orders__placed_at__gte=since_90), distinct=True),
            spend=Sum("orders__total", filter=before),
            spend90=Sum("orders__total", filter=before & Q(orders__placed_at__gte=since_90)),
            returns=Count(
                "orders", filter=before & Q(orders__kind=Order.Kind.RETURN), distinct=True
            ),
            # A subquery, not a join through lines: a join would repeat each order per line and
            # inflate the sums above.
            products=Subquery(
                OrderLine.objects.filter(
                    order__customer=OuterRef("pk"),
                    order__kind=Order.Kind.ORDER,
                    order__status=Order.Status.PLACED,
                    order__placed_at__lt=at,
                )
                .values("order__customer")
                .annotate(c=Count("product", distinct=True))
                .values("c"),
                output_field=IntegerField(),
            ),
        )
        .filter(n__gt=0)
        .values_list("pk", "last", "first", "n", "n90", "spend", "spend90", "returns", "products")
    )
    ids, table = [], []
    for pk, last, first, n, n90, spend, spend90, returns, products in rows:
        spend, spend90 = float(spend or 0), float(spend90 or 0)
        ids.append(pk)
        table.append(
            [
                (at - last).days,
                (at - first).days,
                n,
                n90,
                spend,
                spend90,
                spend / n,
                returns,
                products or 0,
            ]
        )
    return np.array(ids, dtype=np.int64), np.array(table, dtype=np.float64).reshape(
        -1, len(FEATURES)
    )


def _bought_between(workspace: Workspace, start: datetime, end: datetime) -> set[int]:
    return set(
        Order.objects.filter(
            workspace=workspace,
            kind=Order.Kind.ORDER,
            status=Order.Status.PLACED,
            placed_at__gte=start,
            placed_at__lt=end,
            customer__isnull=False,
        ).values_list("customer_id", flat=True)
    )


def reference_time(workspace: Workspace) -> datetime:
    """Now, or the day after the last order for a historical data set (the demo's ends in 2011)."""
    last = Order.objects.filter(workspace=workspace).aggregate(last=Max("placed_at"))["last"]
    now = timezone.now()
    return now if last is None else min(now, last + timedelta(days=1))


def churn_train(
    *,
    workspace: Workspace,
    horizon_days: int = 90,
    task_run: TaskRun | None = None,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
) -> ModelVersion:
    """Label: no purchase in the `horizon_days` after a cut-off `horizon_days` before the
    reference time. Measured on a quarter of the customers held out (ROC-AUC against ranking by
    recency alone), fitted on all, registered, and — when active — used to score everyone now."""
    at = reference_time(workspace)
    cutoff = at - timedelta(days=horizon_days)
    progress(5, "building features")
    ids, X = customer_features(workspace, cutoff)
    if len(ids) < 50:
        raise ValueError(f"only {len(ids)} customers bought before {cutoff:%Y-%m-%d}: too few")
    y = (~np.isin(ids, list(_bought_between(workspace, cutoff, at)))).astype(int)
    rng = np.random.default_rng(0)
    held = rng.random(len(ids)) < 0.25
    progress(30, "evaluating")
    model = ChurnModel().fit(X[~held], y[~held], FEATURES)
    metrics = {
        "customers": int(len(ids)),
        "churn_rate": round(float(y.mean()), 4),
        "auc": round(float(roc_auc_score(y[held], model.predict(X[held]))), 4),
        "auc_recency_only": round(float(roc_auc_score(y[held], X[held, 0])), 4),
        "horizon_days": horizon_days,
        "reference_time": at.isoformat(),
    }
    progress(50, "fitting on all customers")
    model = ChurnModel().fit(X, y, FEATURES)
    version = run_services.model_version_register(
        workspace=workspace,
        family=FAMILY,
        artifact=model,
        metrics=metrics,
        params={"horizon_days": horizon_days},
        task_run=task_run,
    )
    if version.status == ModelVersion.Status.ACTIVE:
        churn_score(version=version, progress=lambda p, m: progress(60 + 0.4 * p, m))
    return version


def churn_score(
    *, version: ModelVersion, progress: Callable[[float, str], None] = lambda pct, msg: None
) -> int:
    """Writes every buying customer's churn risk now, with its top reasons; returns how many."""
    model: ChurnModel = registry.load(version.artifact_path)
    workspace = version.workspace
    at = reference_time(workspace)
    ids, X = customer_features(workspace, at)
    if not len(ids):
        return 0
    risk, reasons = model.predict(X), model.reasons(X, top=3)
    now = timezone.now()
    scores = [
        CustomerScore(
            workspace=workspace,
            customer_id=int(pk),
            kind=SCORE_KIND,
            value=round(float(r), 4),
            model_version=version,
            reasons=why,
            computed_at=now,
        )
        for pk, r, why in zip(ids, risk, reasons, strict=True)
    ]
    scores_upsert(scores)
    progress(100, "scored")
    return len(scores)
