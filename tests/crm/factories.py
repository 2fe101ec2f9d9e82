"""Rows of the CRM for tests (factory_boy), and the small worlds several test modules share.

The factories write rows straight through the ORM, for tests about what reads them. Where the
way a row is written is part of what a test relies on (an order's total and lines as the API
computes them, an API key's hashed secret), the helpers below go through crm.services instead.
"""

import factory
from django.utils import timezone
from rest_framework.test import APIClient

from crm import services
from crm.models import (
    Consent,
    Customer,
    CustomerScore,
    Event,
    Order,
    OrderLine,
    Product,
    Segment,
    SegmentMembership,
    Workspace,
)
from crm.support import services as chat
from workers.models import TaskRun

# What a CRM integration's key holds unless a test says otherwise.
CRM_SCOPES = ["crm:read", "crm:write", "privacy", "tasks:read"]


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    slug = factory.Sequence(lambda n: f"workspace-{n}")
    name = factory.LazyAttribute(lambda workspace: workspace.slug.title())


class CustomerFactory(factory.django.DjangoModelFactory):
    """A customer with an address; `consent="subscribed"` (for e-mail) or
    `consent={"email": ..., "sms": ...}` records their consent too."""

    class Meta:
        model = Customer
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = factory.Sequence(lambda n: f"C{n}")

    @factory.post_generation
    def consent(customer, create, statuses, **_):
        if create and statuses:
            for channel, status in consents_of(statuses).items():
                consent_set(customer, channel=channel, status=status)


def consents_of(statuses: str | dict[str, str]) -> dict[str, str]:
    """{channel: status} from a status for e-mail or a mapping already."""
    return {"email": statuses} if isinstance(statuses, str) else dict(statuses)


def consent_set(customer: Customer, *, channel: str = "email", status: str = "subscribed") -> None:
    """Records `customer`'s consent for `channel` as of now (over any recorded before)."""
    Consent.objects.update_or_create(
        customer=customer,
        channel=channel,
        defaults={"status": status, "updated_at": timezone.now()},
    )


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    workspace = factory.SubFactory(WorkspaceFactory)
    sku = factory.Sequence(lambda n: f"SKU{n}")
    name = factory.LazyAttribute(lambda product: f"Product {product.sku}")
    price = 5


class OrderFactory(factory.django.DjangoModelFactory):
    """An order of a customer of the same workspace; `lines=[(product, quantity, unit_price),
    ...]` adds its lines, and then its total is their sum."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    external_id = factory.Sequence(lambda n: f"order-{n}")
    placed_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def lines(order, create, lines, **_):
        if not (create and lines):
            return
        rows = [
            OrderLine(
                order=order,
                product=product,
                quantity=quantity,
                unit_price=unit_price,
                amount=quantity * unit_price,
            )
            for product, quantity, unit_price in lines
        ]
        OrderLine.objects.bulk_create(rows)
        order.total = sum(row.amount for row in rows)
        order.save(update_fields=["total"])


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    workspace = factory.SubFactory(WorkspaceFactory)
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    type = "view"
    occurred_at = factory.LazyFunction(timezone.now)


class SegmentFactory(factory.django.DjangoModelFactory):
    """A static segment; `members=[customer, ...]` puts customers in it."""

    class Meta:
        model = Segment
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")
    kind = Segment.Kind.STATIC

    @factory.post_generation
    def members(segment, create, customers, **_):
        if create and customers:
            SegmentMembership.objects.bulk_create(
                [SegmentMembership(segment=segment, customer=c) for c in customers]
            )


def client_for(workspace: Workspace, scopes: list[str] = CRM_SCOPES) -> APIClient:
    """An API client holding a new key of `workspace` with `scopes` (made by the real service)."""
    _, secret = services.api_key_create(workspace=workspace, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def seed(workspace: Workspace) -> dict:
    """One customer with an order, an event, a score and a segment membership, written by the
    services the API calls; returns their ids (and the customer's address)."""
    customer_id = services.customer_bulk_upsert(
        workspace=workspace,
        rows=[{"source": "shop", "external_id": "c1", "email": f"c1@{workspace.slug}.io"}],
    ).ids[0]
    product_id = services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": "P1", "name": "Teapot", "price": 20}]
    ).ids[0]
    order_id = services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "o1",
                "customer": customer_id,
                "placed_at": "2026-01-01T10:00:00Z",
                "lines": [{"sku": "P1", "quantity": 1, "unit_price": 20}],
            }
        ],
    ).ids[0]
    event_id = services.event_bulk_create(
        workspace=workspace,
        rows=[{"customer": customer_id, "type": "view", "occurred_at": "2026-01-02T10:00:00Z"}],
    ).ids[0]
    CustomerScore.objects.create(
        workspace=workspace,
        customer_id=customer_id,
        kind="churn_risk",
        value=0.7,
        reasons=[{"feature": "recency_days", "contribution": 0.4}],
        computed_at=timezone.now(),
    )
    segment = Segment.objects.create(workspace=workspace, name="All", kind="static")
    SegmentMembership.objects.create(segment=segment, customer_id=customer_id)
    run = TaskRun.objects.create(kind="x", workspace=workspace)
    return {
        "customer": customer_id,
        "product": product_id,
        "order": order_id,
        "event": event_id,
        "run": run.pk,
        "email": f"c1@{workspace.slug}.io",
    }


def shop(workspace: Workspace) -> tuple[Customer, Customer]:
    """A shop for support chat: the demo knowledge articles, a teacup and a lantern, and Ada
    (order 581001, two teacups) and Bob (order 581002, a lantern)."""
    chat.knowledge_load(workspace=workspace)
    products = [
        {"sku": "TEA", "name": "Regency teacup"},
        {"sku": "LAMP", "name": "Moroccan lantern"},
    ]
    services.product_bulk_upsert(workspace=workspace, rows=products)
    ids = services.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"email": "ada@example.com", "first_name": "Ada"},
            {"email": "bob@example.com", "first_name": "Bob"},
        ],
    ).ids
    orders = [
        {
            "external_id": "581001",
            "customer": ids[0],
            "placed_at": "2026-11-01T10:00:00Z",
            "lines": [{"sku": "TEA", "quantity": 2, "unit_price": 12.25}],
        },
        {
            "external_id": "581002",
            "customer": ids[1],
            "placed_at": "2026-11-02T10:00:00Z",
            "lines": [{"sku": "LAMP", "quantity": 1, "unit_price": 30}],
        },
    ]
    assert not services.order_bulk_upsert(workspace=workspace, rows=orders).errors
    return Customer.objects.get(pk=ids[0]), Customer.objects.get(pk=ids[1])
