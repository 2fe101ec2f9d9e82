"""crm.services: customers upserted in bulk (identities, merges by address, bad rows reported,
concurrent batches), products, orders and events; demo contacts."""

from decimal import Decimal

import pytest

from crm import services
from crm.models import Consent, Customer, Event, ExternalIdentity, Order, Product

pytestmark = pytest.mark.django_db


def test_customer_upsert_creates_then_updates_idempotently(workspace):
    rows = [
        {
            "source": "shop",
            "external_id": "1",
            "email": "Ann@Example.com",
            "first_name": "Ann",
            "country": "gb",
            "consent": {"email": "subscribed"},
        },
        {
            "source": "shop",
            "external_id": "2",
            "email": "bob@example.com",
            "time_zone": "Europe/Paris",
        },
    ]
    first = services.customer_bulk_upsert(workspace=workspace, rows=rows)
    assert (first.created, first.updated, first.errors) == (2, 0, [])
    again = services.customer_bulk_upsert(workspace=workspace, rows=rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert again.ids == first.ids
    ann = Customer.objects.get(pk=first.ids[0])
    assert ann.email == "ann@example.com" and ann.country == "GB"
    assert Consent.objects.get(customer=ann, channel="email").status == "subscribed"
    assert Customer.objects.count() == 2


def test_bad_rows_are_reported_and_good_rows_kept(workspace):
    rows = [
        {"email": "ok@example.com"},
        {"email": "not-an-email"},
        {"source": "shop"},
        {"email": "x@example.com", "time_zone": "Mars/Base", "shoe_size": 9},
        "nonsense",
        {"email": "fine@example.com", "consent": {"fax": "subscribed"}},
    ]
    result = services.customer_bulk_upsert(workspace=workspace, rows=rows)
    assert result.created == 1
    by_index = {e["index"]: e["errors"] for e in result.errors}
    assert set(by_index) == {1, 2, 3, 4, 5}
    assert "email" in by_index[1]
    assert "external_id" in by_index[2]
    assert "time_zone" in by_index[3] and by_index[3]["shoe_size"] == ["unknown field"]
    assert "non_field_errors" in by_index[4]
    assert "consent" in by_index[5]
    assert list(Customer.objects.values_list("email", flat=True)) == ["ok@example.com"]


def test_same_email_from_two_systems_merges_into_one_customer(workspace):
    services.customer_bulk_upsert(
        workspace=workspace, rows=[{"source": "shop", "external_id": "9", "email": "c@x.io"}]
    )
    result = services.customer_bulk_upsert(
        workspace=workspace,
        rows=[{"source": "helpdesk", "external_id": "abc", "email": "C@X.io", "phone": "+44 1"}],
    )
    assert result.created == 0 and result.updated == 1
    customer = Customer.objects.get()
    assert customer.phone == "+44 1"
    assert sorted(map(str, customer.identities.all())) == ["helpdesk:abc", "shop:9"]


def test_two_new_identities_with_one_email_in_a_batch_make_one_customer(workspace):
    result = services.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"source": "a", "external_id": "1", "email": "d@x.io"},
            {"source": "b", "external_id": "2", "email": "d@x.io", "attributes": {"vip": True}},
        ],
    )
    assert result.created == 1 and result.ids[0] == result.ids[1]
    assert ExternalIdentity.objects.filter(customer_id=result.ids[0]).count() == 2
    assert Customer.objects.get().attributes == {"vip": True}


def test_email_of_another_customer_is_refused(workspace):
    services.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"source": "s", "external_id": "1", "email": "one@x.io"},
            {"source": "s", "external_id": "2", "email": "two@x.io"},
        ],
    )
    result = services.customer_bulk_upsert(
        workspace=workspace, rows=[{"source": "s", "external_id": "1", "email": "two@x.io"}]
    )
    assert result.errors == [
        {"index": 0, "errors": {"email": ["already belongs to another customer"]}}
    ]


def test_workspaces_do_not_share_customers(workspace, other_workspace):
    row = {"source": "s", "external_id": "1", "email": "same@x.io"}
    a = services.customer_bulk_upsert(workspace=workspace, rows=[row])
    b = services.customer_bulk_upsert(workspace=other_workspace, rows=[row])
    assert a.created == b.created == 1 and a.ids[0] != b.ids[0]


def test_products_orders_and_events(workspace):
    services.customer_bulk_upsert(workspace=workspace, rows=[{"source": "s", "external_id": "1"}])
    p = services.product_bulk_upsert(
        workspace=workspace,
        rows=[
            {"sku": "A1", "name": "Mug", "price": "4.50"},
            {"sku": "B2"},
            {"sku": "C3", "name": "Tea"},
        ],
    )
    assert p.created == 2 and p.errors[0]["index"] == 1
    orders = services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "o1",
                "customer": "ext:s:1",
                "placed_at": "2026-01-02T10:00:00Z",
                "lines": [
                    {"sku": "A1", "quantity": 2, "unit_price": "4.50"},
                    {"sku": "C3", "quantity": 1, "unit_price": 3},
                ],
            },
            {
                "external_id": "o2",
                "customer": "ext:s:404",
                "placed_at": "2026-01-02T10:00:00Z",
                "lines": [{"sku": "A1", "quantity": 1, "unit_price": 1}],
            },
            {"external_id": "o3", "placed_at": "yesterday", "lines": [{"sku": "ZZ"}]},
            {
                "external_id": "r1",
                "kind": "return",
                "customer": "ext:s:1",
                "placed_at": "2026-01-05T10:00:00Z",
                "lines": [{"sku": "A1", "quantity": 1, "unit_price": "4.50"}],
            },
        ],
    )
    assert orders.created == 2
    errors = {e["index"]: e["errors"] for e in orders.errors}
    assert errors[1] == {"customer": ["no such customer in this workspace"]}
    assert "placed_at" in errors[2] and "lines[0].quantity" in errors[2]
    o1 = Order.objects.get(external_id="o1")
    assert o1.total == Decimal("12.00") and o1.lines.count() == 2
    assert Order.objects.get(external_id="r1").total == Decimal("-4.50")
    # one purchase event for the order, none for the return
    assert list(Event.objects.values_list("type", flat=True)) == ["purchase"]
    # re-sending the order replaces its lines and adds no second purchase event
    again = services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "o1",
                "customer": "ext:s:1",
                "placed_at": "2026-01-02T10:00:00Z",
                "lines": [{"sku": "A1", "quantity": 1, "unit_price": "4.50"}],
            }
        ],
    )
    assert again.updated == 1
    o1.refresh_from_db()
    assert o1.total == Decimal("4.50") and o1.lines.count() == 1
    assert Event.objects.count() == 1
    assert Product.objects.count() == 2

    events = services.event_bulk_create(
        workspace=workspace,
        rows=[
            {
                "customer": "ext:s:1",
                "type": "view",
                "occurred_at": "2026-01-03T00:00:00",
                "properties": {"sku": "A1"},
                "idempotency_key": "k1",
            },
            {
                "customer": "ext:s:1",
                "type": "view",
                "occurred_at": "2026-01-03T00:00:00",
                "idempotency_key": "k1",
            },
            {"customer": 999999, "type": "view", "occurred_at": "2026-01-03T00:00:00"},
        ],
    )
    assert events.created == 1 and events.unchanged == 1 and events.errors[0]["index"] == 2
    repeat = services.event_bulk_create(
        workspace=workspace,
        rows=[
            {
                "customer": "ext:s:1",
                "type": "view",
                "occurred_at": "2026-01-03T00:00:00Z",
                "idempotency_key": "k1",
            }
        ],
    )
    assert repeat.created == 0 and repeat.unchanged == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_about_the_same_people_create_each_once(workspace):
    import threading

    from django.db import connection

    rows = [{"source": "s", "external_id": str(i), "email": f"p{i}@x.io"} for i in range(300)]
    # Two batches overlap on half their people; each also has people of its own.
    batches = [rows[:200], rows[100:]]
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def run(batch):
        try:
            barrier.wait()
            services.customer_bulk_upsert(workspace=workspace, rows=batch)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Customer.objects.filter(workspace=workspace).count() == 300
    assert ExternalIdentity.objects.filter(workspace=workspace).count() == 300


def test_demo_contacts_give_addresses_once(db):
    from django.core.management import call_command

    from crm.models import Consent, Customer, Segment, Workspace

    ws = Workspace.objects.create(slug="demo", name="Demo")
    Customer.objects.bulk_create([Customer(workspace=ws) for _ in range(50)])
    Customer.objects.create(workspace=ws, email="real@example.com")
    call_command("demo_contacts", workspace="demo", share=0.5)
    call_command("demo_contacts", workspace="demo", share=0.5)
    assert not Customer.objects.filter(workspace=ws, email=None).exists()
    assert Customer.objects.filter(email__endswith="@example.invalid").count() == 50
    consenting = Consent.objects.filter(customer__workspace=ws, status="subscribed").count()
    assert 10 < consenting < 40
    assert Segment.objects.get(workspace=ws, name__startswith="Demo:").member_count == consenting
