"""crm.api.views, the CRM API: keys and scopes, workspace isolation, bulk writes, errors,
privacy."""

import json

import pytest
from rest_framework.test import APIClient

from crm import services
from crm.models import (
    AuditEntry,
    Customer,
    CustomerScore,
    Event,
    Order,
    SegmentMembership,
)
from tests.crm.factories import client_for, seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_workspaces(workspace, other_workspace):
    return seed(workspace), seed(other_workspace)


def test_a_key_never_reaches_another_workspace(workspace, two_workspaces):
    mine, theirs = two_workspaces
    api = client_for(workspace)
    body = {"first_name": "X"}
    urls = [
        f"/api/v1/customers/{theirs['customer']}",
        "/api/v1/customers/ext:shop:c1".replace("c1", "nope"),
        f"/api/v1/customers/email:{theirs['email']}",
        f"/api/v1/customers/{theirs['customer']}/timeline",
        f"/api/v1/products/{theirs['product']}",
        f"/api/v1/orders/{theirs['order']}",
        f"/api/v1/events/{theirs['event']}",
    ]
    for url in urls:
        for method in ("get", "patch", "put", "delete"):
            if url.endswith("/timeline") and method != "get":
                continue
            response = getattr(api, method)(url, body, format="json")
            # Events are append-only: PUT and PATCH answer 405 whatever the id, telling nothing.
            expected = 405 if "/events/" in url and method in ("patch", "put") else 404
            assert response.status_code == expected, (method, url, response.status_code)
    for url in ("/api/v1/privacy/export", "/api/v1/privacy/erase"):
        response = api.post(url, {"customer": theirs["customer"]}, format="json")
        assert response.status_code == 404
    assert api.get(f"/api/v1/tasks/{theirs['run']}").status_code == 404
    assert api.get(f"/api/v1/tasks/{mine['run']}").status_code == 200
    # list endpoints hold only this workspace's rows
    for resource, key in [
        ("customers", "customer"),
        ("products", "product"),
        ("orders", "order"),
        ("events", "event"),
    ]:
        ids = {row["id"] for row in api.get(f"/api/v1/{resource}").json()["results"]}
        assert mine[key] in ids and theirs[key] not in ids
    # their customer is untouched
    assert Customer.objects.get(pk=theirs["customer"]).erased_at is None
    # an order line naming their customer is refused, not attached
    response = api.post(
        "/api/v1/orders",
        {
            "external_id": "x",
            "customer": theirs["customer"],
            "placed_at": "2026-01-01T00:00:00Z",
            "lines": [{"sku": "P1", "quantity": 1, "unit_price": 1}],
        },
        format="json",
    )
    assert response.status_code == 400 and "customer" in response.json()


def test_ext_and_email_addressing(workspace, two_workspaces):
    mine, _ = two_workspaces
    api = client_for(workspace)
    for ref in (mine["customer"], "ext:shop:c1", f"email:{mine['email']}"):
        response = api.get(f"/api/v1/customers/{ref}")
        assert response.status_code == 200 and response.json()["id"] == mine["customer"]
    timeline = api.get("/api/v1/customers/ext:shop:c1/timeline").json()["results"]
    kinds = [item["kind"] for item in timeline]
    assert kinds.count("order") == 1 and "event" in kinds and "score" in kinds
    score = next(item for item in timeline if item["kind"] == "score")
    assert score["reasons"][0]["feature"] == "recency_days"


def test_auth_errors(workspace, two_workspaces):
    mine, _ = two_workspaces
    assert APIClient().get("/api/v1/customers").status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer mai_000000000000_nope")
    assert bad.get("/api/v1/customers").status_code == 401
    reader = client_for(workspace, ["crm:read"])
    assert reader.get("/api/v1/customers").status_code == 200
    response = reader.post("/api/v1/customers", {"email": "n@x.io"}, format="json")
    assert response.status_code == 403 and "crm:write" in response.json()["detail"]
    assert reader.post("/api/v1/privacy/export", {"customer": mine["customer"]}).status_code == 403
    key = services.api_key_create(workspace=workspace, name="old", scopes=["crm:read"])
    services.api_key_revoke(key=key[0])
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {key[1]}")
    assert revoked.get("/api/v1/customers").status_code == 401


def test_delete_of_a_customer_is_an_erasure_and_needs_the_privacy_scope(workspace, two_workspaces):
    mine, _ = two_workspaces
    writer = client_for(workspace, ["crm:read", "crm:write"])
    refused = writer.delete(f"/api/v1/customers/{mine['customer']}")
    assert refused.status_code == 403 and "privacy" in refused.json()["detail"]
    assert Customer.objects.get(pk=mine["customer"]).erased_at is None
    assert Event.objects.filter(customer_id=mine["customer"]).exists()
    privacy_only = client_for(workspace, ["privacy"])
    assert privacy_only.delete(f"/api/v1/customers/{mine['customer']}").status_code == 403
    both = client_for(workspace, ["crm:write", "privacy"])
    assert both.delete(f"/api/v1/customers/{mine['customer']}").status_code == 204
    assert Customer.objects.get(pk=mine["customer"]).erased_at is not None
    assert AuditEntry.objects.filter(action="privacy.erase", customer_id=mine["customer"]).exists()


def test_bulk_is_idempotent_by_key_and_by_external_id(workspace):
    api = client_for(workspace)
    rows = [{"source": "shop", "external_id": str(i), "email": f"u{i}@x.io"} for i in range(50)]
    rows.append({"email": "broken"})
    headers = {"HTTP_IDEMPOTENCY_KEY": "batch-1"}
    first = api.post("/api/v1/customers/bulk", {"rows": rows}, format="json", **headers)
    assert first.status_code == 200
    assert first.json()["created"] == 50 and first.json()["errors"][0]["index"] == 50
    replay = api.post("/api/v1/customers/bulk", {"rows": rows}, format="json", **headers)
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    # without the header, the same rows are matched by external id: nothing new
    again = api.post("/api/v1/customers/bulk", rows, format="json")
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 50
    assert Customer.objects.filter(workspace=workspace).count() == 50
    other_body = api.post("/api/v1/customers/bulk", rows[:3], format="json", **headers)
    assert other_body.status_code == 422


def test_bulk_envelope_errors(workspace):
    api = client_for(workspace)
    assert api.post("/api/v1/events/bulk", {"rows": "x"}, format="json").status_code == 400
    too_many = [{"email": f"{i}@x.io"} for i in range(10_001)]
    response = api.post("/api/v1/customers/bulk", too_many, format="json")
    assert response.status_code == 400 and "10000" in json.dumps(response.json())
    response = api.generic(
        "POST", "/api/v1/customers/bulk", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_malformed_input_never_gives_500(workspace, two_workspaces):
    mine, _ = two_workspaces
    api = client_for(workspace)
    junk = [
        None,
        1,
        "x",
        [],
        [1, 2],
        {"rows": [None]},
        {"email": {"a": 1}},
        {"lines": "x"},
        {"customer": [1]},
        {"occurred_at": 5},
        {"price": "NaN"},
        {"price": "1e400"},
        {"quantity": 2**70},
        {"attributes": []},
        {"consent": "yes"},
    ]
    urls = [
        "/api/v1/customers",
        "/api/v1/products",
        "/api/v1/orders",
        "/api/v1/events",
        "/api/v1/customers/bulk",
        "/api/v1/products/bulk",
        "/api/v1/orders/bulk",
        "/api/v1/events/bulk",
        f"/api/v1/customers/{mine['customer']}",
        f"/api/v1/products/{mine['product']}",
        f"/api/v1/orders/{mine['order']}",
        "/api/v1/privacy/export",
    ]
    for url in urls:
        for body in junk:
            method = api.patch if url[-1].isdigit() else api.post
            response = method(url, json.dumps(body), content_type="application/json")
            assert response.status_code < 500, (url, body, response.content[:200])
    for query in ("updated_since=yesterday", "cursor=garbage", "limit=abc", "segment=x"):
        assert api.get(f"/api/v1/customers?{query}").status_code < 500, query
    assert api.get("/api/v1/customers?updated_since=yesterday").status_code == 400


def test_cursor_pagination_walks_every_row(workspace):
    services.customer_bulk_upsert(
        workspace=workspace, rows=[{"email": f"p{i}@x.io"} for i in range(25)]
    )
    api = client_for(workspace)
    seen, url = [], "/api/v1/customers?limit=10"
    while url:
        page = api.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 25


def test_single_create_update_and_field_errors(workspace):
    api = client_for(workspace)
    created = api.post("/api/v1/customers", {"email": "Z@x.io", "country": "fr"}, format="json")
    assert created.status_code == 201 and created.json()["country"] == "FR"
    pk = created.json()["id"]
    updated = api.patch(f"/api/v1/customers/{pk}", {"first_name": "Zoe"}, format="json")
    assert updated.status_code == 200 and updated.json()["first_name"] == "Zoe"
    bad = api.patch(f"/api/v1/customers/{pk}", {"time_zone": "Nowhere"}, format="json")
    assert bad.status_code == 400 and "time_zone" in bad.json()
    assert api.post("/api/v1/products", {"sku": "X"}, format="json").json() == {
        "name": ["required for a new product"]
    }
    event = api.post(
        "/api/v1/events",
        {"customer": pk, "type": "click", "occurred_at": "2026-02-01T00:00:00Z"},
        format="json",
    )
    assert event.status_code == 201
    assert api.patch(f"/api/v1/events/{event.json()['id']}", {}, format="json").status_code == 405


def test_throttled_key_gets_429(workspace, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"},
    }
    api = client_for(workspace)
    codes = [api.get("/api/v1/products").status_code for _ in range(8)]
    first_refusal = codes.index(429)
    # 3 per window; a window boundary falling inside the loop can allow up to 3 more.
    assert 3 <= first_refusal <= 6, codes
    response = api.get("/api/v1/products")
    assert response.status_code == 429 and int(response["Retry-After"]) <= 60
    other = client_for(workspace)  # every key has its own budget
    assert other.get("/api/v1/products").status_code == 200


def test_erasure_reaches_everything(workspace, two_workspaces):
    mine, theirs = two_workspaces
    api = client_for(workspace)
    exported = api.post("/api/v1/privacy/export", {"customer": "ext:shop:c1"}, format="json")
    assert exported.status_code == 200
    data = exported.json()
    assert data["customer"]["email"] == mine["email"]
    assert len(data["orders"]) == 1 and len(data["events"]) == 2  # view + purchase
    assert data["scores"][0]["kind"] == "churn_risk" and data["segments"][0]["segment__name"]

    erased = api.post("/api/v1/privacy/erase", {"customer": mine["customer"]}, format="json")
    assert erased.status_code == 200
    customer = Customer.objects.get(pk=mine["customer"])
    assert customer.erased_at and customer.email is None and customer.attributes == {}
    assert not Event.objects.filter(customer_id=mine["customer"]).exists()
    assert not CustomerScore.objects.filter(customer_id=mine["customer"]).exists()
    assert not SegmentMembership.objects.filter(customer_id=mine["customer"]).exists()
    order = Order.objects.get(pk=mine["order"])
    assert order.customer_id is None  # the sale stays in the totals, nobody's any more
    audit = AuditEntry.objects.filter(action="privacy.erase").get()
    assert audit.customer_id == mine["customer"] and mine["email"] not in json.dumps(audit.details)
    # gone from the API, and cannot be found by its old identity or email
    assert api.get(f"/api/v1/customers/{mine['customer']}").status_code == 404
    assert api.get("/api/v1/customers/ext:shop:c1").status_code == 404
    # the other workspace's person is untouched
    assert Event.objects.filter(customer_id=theirs["customer"]).count() == 2


def test_erased_customers_leave_training_data(workspace, two_workspaces):
    from crm import selectors

    mine, _ = two_workspaces
    before = selectors.purchase_history(workspace=workspace)
    assert [row[0] for row in before] == [mine["customer"]]
    services.privacy_erase(customer=Customer.objects.get(pk=mine["customer"]), actor="test")
    assert selectors.purchase_history(workspace=workspace) == []
