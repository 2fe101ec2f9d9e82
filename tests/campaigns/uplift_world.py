"""A small shop for the uplift tests: customers of four kinds by their orders before the send
(recent buyers, lapsing regulars, frequent buyers, long-lapsed), and the simulated campaign of
campaigns.services.uplift_demo sent to them with a 50% holdout."""

from datetime import timedelta

from django.utils import timezone

from campaigns.services.uplift_demo import demo_uplift_campaign
from crm import services
from crm.models import Segment, Workspace
from tests.campaigns.factories import make_audience

# Days before the send of each kind's orders.
KINDS = {
    "recent": [10],
    "lapsing": [60, 120, 200],
    "frequent": [5, 30, 55, 80],
    "lapsed": [400],
}


def send_time():
    """Three weeks ago: every 5-day attribution window has closed."""
    return (timezone.now() - timedelta(days=21)).replace(microsecond=0)


def shop(workspace: Workspace, n: int = 400, prefix: str = "person") -> tuple[Segment, dict]:
    """`n` consenting customers, the i-th of kind list(KINDS)[i % 4]; returns the segment of
    them all and {customer id: kind}."""
    segment = make_audience(workspace, n, prefix=prefix, name=f"Everyone {prefix}")
    at = send_time()
    services.product_bulk_upsert(workspace=workspace, rows=[{"sku": "A", "name": "A"}])
    kinds, orders = {}, []
    customers = sorted(segment.memberships.values_list("customer_id", flat=True))
    for i, pk in enumerate(customers):
        kind = list(KINDS)[i % 4]
        kinds[pk] = kind
        for j, days in enumerate(KINDS[kind]):
            orders.append(
                {
                    "external_id": f"{prefix}-{pk}-{j}",
                    "customer": pk,
                    "placed_at": (at - timedelta(days=days)).isoformat(),
                    "lines": [{"sku": "A", "quantity": 1, "unit_price": 20}],
                }
            )
    result = services.order_bulk_upsert(workspace=workspace, rows=orders)
    assert not result.errors
    return segment, kinds


def sent_campaign(workspace: Workspace, segment: Segment, **fields):
    return demo_uplift_campaign(workspace=workspace, segment=segment, sent_at=send_time(), **fields)
