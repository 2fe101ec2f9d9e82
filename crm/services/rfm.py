"""RFM groups as segments: "RFM: Champions", "RFM: At risk", ... rebuilt from orders."""

import numpy as np
from django.db import transaction
from django.utils import timezone

from crm.models import Segment, SegmentMembership, Workspace
from crm.services.churn import FEATURES, customer_features, reference_time
from marketing_ai.ml.segment.rfm import GROUPS, rfm

PREFIX = "RFM: "


@transaction.atomic
def rfm_segments_refresh(*, workspace: Workspace) -> dict[str, int]:
    """Scores every buying customer on recency, frequency and spend, and makes each named group a
    static segment campaigns can target; returns members per group."""
    ids, X = customer_features(workspace, reference_time(workspace))
    if not len(ids):
        return {}
    out = rfm(
        X[:, FEATURES.index("recency_days")],
        X[:, FEATURES.index("orders")],
        X[:, FEATURES.index("spend")],
    )
    counts = {}
    now = timezone.now()
    for name, _ in GROUPS:
        members = ids[out["group"] == name]
        segment, _ = Segment.objects.update_or_create(
            workspace=workspace,
            name=PREFIX + name,
            defaults={
                "kind": Segment.Kind.STATIC,
                "rules": {},
                "description": f"RFM group '{name}', rebuilt from orders",
            },
        )
        segment.memberships.all().delete()
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment=segment, customer_id=int(pk)) for pk in members],
            batch_size=5000,
        )
        Segment.objects.filter(pk=segment.pk).update(member_count=len(members), refreshed_at=now)
        counts[name] = int(len(members))
    assert sum(counts.values()) == len(ids) and np.all(out["group"] != "")
    return counts
