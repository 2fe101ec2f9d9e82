"""Recommenders on the platform: train on a workspace's purchases, register the version, and
write each customer's top products for the active version."""

from collections.abc import Callable

import numpy as np
from django.utils import timezone

from crm import selectors
from crm.models import Customer, Product, Recommendation, Workspace
from crm.recommendation_cache import recommendations_changed
from crm.selectors.recommendations import FAMILY_PREFIX
from crm.services.training import DEFAULT_RECOMMENDER
from marketing_ai.ml import datasets, evaluate, recommend, registry
from workers import services as run_services
from workers.models import ModelVersion, TaskRun

# The best ranker on both benchmark data sets (bench/recommend.py), at the cost of EASE.


def _interactions(workspace: Workspace) -> datasets.Interactions:
    history = selectors.purchase_history(workspace=workspace)
    if not history:
        raise ValueError(f"workspace {workspace.slug} has no purchases to learn from")
    customers, products, _, placed = zip(*history, strict=True)
    times = np.array([p.timestamp() for p in placed])
    return datasets.from_arrays(np.array(customers), np.array(products), times)


def _fit(model: str, params: dict, data: datasets.Interactions, progress, start: float, end: float):
    """Matrix models learn from who bought what; sequential ones from the order of purchases,
    epoch by epoch (reported between `start` and `end` percent)."""
    created = recommend.create(model, **params)
    if model not in recommend.SEQUENTIAL:
        return created.fit(data.matrix())
    epochs = created.epochs

    def epoch_done(epoch: int, entry: dict) -> None:
        share = start + (end - start) * epoch / epochs
        progress(share, f"epoch {epoch} of {epochs}, loss {entry['loss']:.3f}")

    return created.fit(data, progress=epoch_done)


def recommender_train(
    *,
    workspace: Workspace,
    model: str = DEFAULT_RECOMMENDER,
    params: dict | None = None,
    holdout_days: int = 30,
    k: int = 20,
    repeat_purchases: bool = False,
    task_run: TaskRun | None = None,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
) -> ModelVersion:
    """Evaluates `model` on the last `holdout_days` of purchases (trained on what came before,
    full ranking, Recall@k / NDCG@k), then fits it on everything and registers a version with
    those metrics. The first version of a family becomes active; later ones wait as shadows
    for staff to compare and promote. `repeat_purchases`: lists may hold products the customer
    already bought (consumables: tea, coffee, refills); by default they are left out, and the
    evaluation then ranks only products new to each customer."""
    params = params or {}
    progress(5, "reading purchases")
    data = _interactions(workspace)
    cutoff = data.times.max() - holdout_days * 86400
    train, test = data.subset(data.times < cutoff), data.subset(data.times >= cutoff)
    progress(20, f"evaluating on the last {holdout_days} days")
    metrics = {"customers": data.n_users, "products": data.n_items, "purchases": len(data)}
    if len(train) and len(test):
        fitted = _fit(model, params, train, progress, 20, 50)
        # Test customers who had no history before the cut-off cannot be ranked: left out.
        known = np.isin(test.users, np.unique(train.users))
        # Repeat purchases allowed: nothing is taken out of the ranking, and buying again counts.
        seen = train.matrix()
        seen = seen[:, :0].tocsr() if repeat_purchases else seen
        result = evaluate.evaluate(fitted, seen, test.subset(known), k=k)
        metrics.update(
            {
                f"recall@{k}": round(result.recall, 4),
                f"ndcg@{k}": round(result.ndcg, 4),
                "test_customers": result.users,
            }
        )
    progress(55, "fitting on all purchases")
    fitted = _fit(model, params, data, progress, 55, 60)
    metrics.update(getattr(fitted, "trained_on", {}))  # sequential models: device and precision
    popular = np.argsort(-np.asarray(data.matrix().sum(axis=0)).ravel())[:100]
    artifact = {
        "model": fitted,
        "customers": data.user_labels,
        "products": data.item_labels,
        "seen": data.matrix(),
    }
    version = run_services.model_version_register(
        workspace=workspace,
        family=FAMILY_PREFIX + model,
        artifact=artifact,
        metrics=metrics,
        # the fallback for customers the model has not seen, kept where serving reads fast
        params={
            "model": model,
            **params,
            "popular": data.item_labels[popular].tolist(),
            "repeat_purchases": repeat_purchases,
        },
        task_run=task_run,
    )
    if version.status == ModelVersion.Status.ACTIVE:
        recommendations_write(version=version, progress=lambda p, m: progress(60 + p * 0.4, m))
    return version


def recommendations_write(
    *,
    version: ModelVersion,
    top_n: int = 20,
    batch: int = 1000,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
) -> int:
    """Writes every known customer's top `top_n` active products from `version` (items they
    bought are left out unless the version allows repeat purchases), and drops the lists other
    versions wrote for customers `version` does not know (they get its popular picks); returns
    how many customers got a list."""
    artifact = registry.load(version.artifact_path)
    repeat_purchases = bool(version.params.get("repeat_purchases"))
    model, customers, products = artifact["model"], artifact["customers"], artifact["products"]
    seen = artifact["seen"]
    workspace = version.workspace
    active = set(
        Product.objects.filter(workspace=workspace, active=True).values_list("pk", flat=True)
    )
    usable = np.array([p in active for p in products])
    live = set(
        Customer.objects.filter(workspace=workspace, erased_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    codes = np.array([i for i, c in enumerate(customers) if c in live])
    now = timezone.now()
    written = 0
    for start in range(0, len(codes), batch):
        chunk = codes[start : start + batch]
        scores = np.asarray(model.score(chunk), dtype=np.float64)
        scores[:, ~usable] = -np.inf
        if not repeat_purchases:
            rows = seen[chunk]
            scores[np.repeat(np.arange(len(chunk)), np.diff(rows.indptr)), rows.indices] = -np.inf
        top = np.argsort(-scores, axis=1)[:, :top_n]
        objs = [
            Recommendation(
                workspace=workspace,
                customer_id=int(customers[code]),
                model_version=version,
                computed_at=now,
                products=[
                    [int(products[j]), round(float(scores[row, j]), 5)]
                    for j in top[row]
                    if np.isfinite(scores[row, j])
                ],
            )
            for row, code in enumerate(chunk)
        ]
        Recommendation.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["customer"],
            update_fields=["products", "model_version", "computed_at"],
        )
        written += len(objs)
        progress(
            100 * min(start + batch, len(codes)) / max(len(codes), 1), "writing recommendations"
        )
    # After a rollback, customers the restored version never saw kept the newer version's lists.
    Recommendation.objects.filter(workspace=workspace).exclude(model_version=version).delete()
    recommendations_changed(workspace_id=workspace.pk)
    return written
