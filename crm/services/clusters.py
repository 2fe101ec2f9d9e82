"""Customer clusters as segments: behaviour from orders plus taste from the products bought
(the mean MiniLM embedding of their names and descriptions), described in plain words, each
cluster a static segment "Cluster: <description>" that campaigns can target. Rebuilt whole."""

from collections import defaultdict

import numpy as np
from django.db import transaction
from django.utils import timezone

from crm.models import Order, OrderLine, Product, Segment, SegmentMembership, Workspace
from crm.services.churn import FEATURES, customer_features, reference_time
from marketing_ai.ml.language.embeddings import encoder
from marketing_ai.ml.segment import clusters

PREFIX = "Cluster: "


def _taste(workspace: Workspace, ids: np.ndarray, progress=None):
    """Mean product embedding per customer (rows of zeros for none) and bought product names."""
    bought: dict[int, set[int]] = defaultdict(set)
    lines = OrderLine.objects.filter(
        order__workspace=workspace,
        order__kind=Order.Kind.ORDER,
        quantity__gt=0,
        order__customer__isnull=False,
        order__customer__erased_at__isnull=True,
    ).values_list("order__customer_id", "product_id")
    for customer_id, product_id in lines.iterator(chunk_size=20000):
        bought[customer_id].add(product_id)
    products = list(
        Product.objects.filter(workspace=workspace).values_list("id", "name", "description")
    )
    if progress:
        progress(30, f"embedding {len(products):,} products")
    texts = [f"{name}. {description}".strip(". ") for _, name, description in products]
    vectors = encoder().encode(texts)
    row_of = {pid: i for i, (pid, _, _) in enumerate(products)}
    names = {pid: name for pid, name, _ in products}
    taste = np.zeros((len(ids), vectors.shape[1]), dtype=np.float32)
    words: list[list[str]] = []
    for i, customer_id in enumerate(ids):
        rows = [row_of[p] for p in bought.get(int(customer_id), ()) if p in row_of]
        if rows:
            taste[i] = vectors[rows].mean(axis=0)
        words.append([names[p] for p in bought.get(int(customer_id), ()) if p in names])
    return taste, words


def cluster_segments_refresh(*, workspace: Workspace, progress=None) -> dict:
    """Clusters the workspace's buying customers and rewrites the "Cluster: ..." segments."""
    ids, X = customer_features(workspace, reference_time(workspace))
    if len(ids) < 20:
        return {"customers": int(len(ids)), "clusters": {}}
    behaviour = clusters.CustomerBehaviour(
        ids=ids,
        spend=X[:, FEATURES.index("spend")],
        orders=X[:, FEATURES.index("orders")],
        recency_days=X[:, FEATURES.index("recency_days")],
        tenure_days=X[:, FEATURES.index("tenure_days")],
    )
    taste, words = _taste(workspace, ids, progress)
    if progress:
        progress(60, "clustering")
    result = clusters.fit(behaviour, taste, words)
    now = timezone.now()
    with transaction.atomic():
        Segment.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()
        out = {}
        for c, description in enumerate(result.descriptions):
            members = ids[result.labels == c]
            segment = Segment.objects.create(
                workspace=workspace,
                name=(PREFIX + description)[:200],
                kind=Segment.Kind.STATIC,
                description=f"Cluster {c + 1} of {result.k}: {description}. "
                f"Median spend {result.profiles[c]['median_spend']:.0f}, "
                f"{result.profiles[c]['median_orders']:.0f} orders, last order "
                f"{result.profiles[c]['median_recency_days']:.0f} days ago.",
                member_count=len(members),
                refreshed_at=now,
            )
            SegmentMembership.objects.bulk_create(
                [SegmentMembership(segment=segment, customer_id=int(pk)) for pk in members],
                batch_size=5000,
            )
            out[segment.name] = int(len(members))
    return {
        "customers": int(len(ids)),
        "k": result.k,
        "silhouette": round(result.silhouette, 4),
        "clusters": out,
    }
