"""crm.segments' clearance rule: customers who bought products the active forecast says are
slowing, in the compiler (against the facts), the live count, the API and the refresh. It
compiles to SQL, so this file runs on PostgreSQL (the suite) and on SQLite (the demo's
database: DATABASE_URL unset)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from crm import segments, services
from crm.models import Customer
from crm.services import segments as segment_services
from tests.crm.factories import client_for
from tests.crm.forecast_rows import forecast_version
from workers.models import ModelVersion

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CLEARANCE = {"bought_forecast": "slowing"}


@pytest.fixture
def shop(workspace):
    """Five customers: ann bought the slowing mug 10 days ago, bob 200 days ago, cat the rising
    lamp, dan the steady tea and returned a mug, eve's mug order was cancelled."""
    services.product_bulk_upsert(
        workspace=workspace,
        rows=[{"sku": sku, "name": sku} for sku in ("MUG", "LAMP", "TEA")],
    )
    names = ["ann", "bob", "cat", "dan", "eve"]
    ids = services.customer_bulk_upsert(
        workspace=workspace,
        rows=[{"source": "s", "external_id": n, "email": f"{n}@acme.io"} for n in names],
    ).ids
    who = dict(zip(names, ids.values(), strict=True))

    def order(key, name, sku, days, quantity=1, **extra):
        return {
            "external_id": key,
            "customer": who[name],
            "placed_at": (NOW - timedelta(days=days)).isoformat(),
            "lines": [{"sku": sku, "quantity": quantity, "unit_price": 5}],
            **extra,
        }

    rows = [
        order("1", "ann", "MUG", 10),
        order("2", "bob", "MUG", 200),
        order("3", "cat", "LAMP", 10),
        order("4", "dan", "TEA", 10),
        order("5", "dan", "MUG", 5, quantity=-1, kind="return"),
        order("6", "eve", "MUG", 10, status="cancelled"),
    ]
    assert not services.order_bulk_upsert(workspace=workspace, rows=rows).errors
    return who


def names(queryset) -> set[str]:
    return {email.split("@")[0] for email in queryset.values_list("email", flat=True)}


def test_buyers_of_slowing_products(workspace, other_workspace, shop):
    assert names(segments.customers_matching(workspace, CLEARANCE, now=NOW)) == set()
    forecast_version(
        workspace, {"MUG": (-0.4, -0.6, -0.2), "LAMP": (0.5, 0.2, 0.8), "TEA": (-0.1, -0.3, 0.1)}
    )
    # Another workspace's forecast calls the tea slowing: it is not this workspace's.
    forecast_version(other_workspace, {"TEA": (-0.5, -0.7, -0.3)})
    assert names(segments.customers_matching(workspace, CLEARANCE, now=NOW)) == {"ann", "bob"}
    recent = {**CLEARANCE, "within_days": 30, "as_of": NOW.isoformat()}
    assert names(segments.customers_matching(workspace, recent)) == {"ann"}
    rising = {"bought_forecast": "rising"}
    assert names(segments.customers_matching(workspace, rising, now=NOW)) == {"cat"}
    combined = {"all": [CLEARANCE, {"attribute": "email", "op": "contains", "value": "bob"}]}
    assert names(segments.customers_matching(workspace, combined, now=NOW)) == {"bob"}
    narrowed = segments.customers_matching(
        workspace, CLEARANCE, now=NOW, customer_ids=[shop["bob"], shop["cat"]]
    )
    assert names(narrowed) == {"bob"}
    assert segments.uses_behaviour({"not": CLEARANCE})


def test_only_the_active_version_speaks(workspace, shop):
    first = forecast_version(workspace, {"MUG": (-0.4, -0.6, -0.2)})
    assert names(segments.customers_matching(workspace, CLEARANCE, now=NOW)) == {"ann", "bob"}
    # A newer run, now active, sees the mug steady and the lamp slowing.
    ModelVersion.objects.filter(pk=first.pk).update(status=ModelVersion.Status.RETIRED)
    forecast_version(workspace, {"MUG": (0.0, -0.2, 0.2), "LAMP": (-0.3, -0.5, -0.1)})
    assert names(segments.customers_matching(workspace, CLEARANCE, now=NOW)) == {"cat"}
    # A shadow version's trends are not acted on.
    forecast_version(workspace, {"TEA": (-0.5, -0.7, -0.3)}, status=ModelVersion.Status.SHADOW)
    assert names(segments.customers_matching(workspace, CLEARANCE, now=NOW)) == {"cat"}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"bought_forecast": "falling"}, "rules.bought_forecast: 'slowing' or 'rising'"),
        ({"bought_forecast": "slowing", "within_days": 0}, "rules.within_days"),
        ({"bought_forecast": "slowing", "measure": "euros"}, "rules.measure"),
        ({"any": [{"bought_forecast": ["slowing"]}]}, "rules.any[0].bought_forecast"),
    ],
)
def test_bad_rules_say_where(workspace, rules, message):
    with pytest.raises(segments.RuleError, match=message.replace("[", r"\[")):
        segments.compile_rules(workspace, rules)


def test_refresh_and_the_api(workspace, other_workspace, shop):
    forecast_version(workspace, {"MUG": (-0.4, -0.6, -0.2)})
    api = client_for(workspace)
    made = api.post(
        "/api/v1/segments", {"name": "Clearance", "rules": CLEARANCE}, format="json"
    ).json()
    segment = segment_services.Segment.objects.get(pk=made["id"])
    assert segment_services.segment_refresh(segment=segment)["members"] == 2
    assert api.get(f"/api/v1/segments/{segment.pk}/count").json()["count"] == 2
    members = api.get(f"/api/v1/segments/{segment.pk}/members").json()["results"]
    assert {m["id"] for m in members} == {shop["ann"], shop["bob"]}
    preview = api.post("/api/v1/segments/preview", {"rules": CLEARANCE}, format="json")
    assert preview.status_code == 200 and preview.json()["count"] == 2
    # The mug stops slowing in the next forecast: the refresh takes the members out.
    ModelVersion.objects.filter(workspace=workspace).update(status=ModelVersion.Status.RETIRED)
    forecast_version(workspace, {"MUG": (0.0, -0.2, 0.2)})
    assert segment_services.segment_refresh(segment=segment) == {
        "added": 0,
        "removed": 2,
        "members": 0,
    }
    bad = api.post("/api/v1/segments/preview", {"rules": {"bought_forecast": 1}}, format="json")
    assert bad.status_code == 400 and "bought_forecast" in bad.json()["rules"][0]


def test_live_count_in_the_segment_builder(admin_client, workspace, shop):
    forecast_version(workspace, {"MUG": (-0.4, -0.6, -0.2)})
    Customer.objects.filter(pk=shop["bob"]).update(erased_at=NOW)  # erased: never matches
    live = admin_client.post(
        "/admin/crm/segment/live/",
        json.dumps({"workspace": workspace.pk, "rules": CLEARANCE}),
        content_type="application/json",
    )
    assert live.status_code == 200, live.content
    assert live.json()["count"] == 1 and live.json()["sample"][0]["id"] == shop["ann"]
    page = admin_client.get("/admin/crm/segment/add/").content.decode()
    assert '"bought_forecast": "slowing"' in page
