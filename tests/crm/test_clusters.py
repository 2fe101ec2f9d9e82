"""crm.services.clusters: cluster segments on the platform, with the packaged MiniLM embeddings."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import Customer, Order, OrderLine, Product, Segment
from crm.services.clusters import PREFIX, cluster_segments_refresh

pytestmark = pytest.mark.django_db


def test_clusters_become_described_segments(workspace):
    now = timezone.now()

    def products(prefix: str, names: list[str]) -> list[Product]:
        return [
            Product.objects.create(workspace=workspace, sku=f"{prefix}{i}", name=name)
            for i, name in enumerate(names)
        ]

    candles = products("C", ["SCENTED CANDLE LAVENDER", "PILLAR CANDLE IVORY", "CANDLE HOLDER"])
    kitchen = products("K", ["OWL MUG", "ENAMEL TEA POT", "CAKE TIN PANTRY"])
    number = 0
    for i in range(90):
        loyal, products = i % 3 == 0, candles if i % 2 else kitchen
        customer = Customer.objects.create(workspace=workspace, email=f"c{i}@example.com")
        for k in range(12 if loyal else 1):
            number += 1
            placed = now - timedelta(days=(3 + k * 5) if loyal else 250 + i)
            order = Order.objects.create(
                workspace=workspace,
                customer=customer,
                placed_at=placed,
                external_id=f"o{number}",
                total=Decimal(200 if loyal else 15),
            )
            for product in products[:2]:
                OrderLine.objects.create(
                    order=order,
                    product=product,
                    quantity=1,
                    unit_price=Decimal(10),
                    amount=Decimal(10),
                )
    result = cluster_segments_refresh(workspace=workspace)
    assert result["customers"] == 90 and 4 <= result["k"] <= 8
    segments = Segment.objects.filter(workspace=workspace, name__startswith=PREFIX)
    assert segments.count() == result["k"]
    assert sum(s.member_count for s in segments) == 90
    names = " | ".join(segments.values_list("name", flat=True))
    assert "high spend" in names and "candle" in names
    assert all(s.memberships.count() == s.member_count for s in segments)
    again = cluster_segments_refresh(workspace=workspace)  # rebuilt, not duplicated
    assert (
        Segment.objects.filter(workspace=workspace, name__startswith=PREFIX).count() == again["k"]
    )
