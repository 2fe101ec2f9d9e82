"""crm.segments (the compiler, against a Python oracle), crm.services.segments (membership
refresh) and crm.api.segments."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from crm import segments, services
from crm.models import Customer, CustomerScore, Event, Order, Segment, SegmentMembership
from crm.services import segments as segment_services
from tests.conftest import wait_until
from tests.crm.factories import client_for

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def population(workspace):
    """60 customers with random countries, orders, events and scores; returns plain facts."""
    rng = random.Random(7)
    rows = [
        {
            "source": "s",
            "external_id": str(i),
            "country": rng.choice(["GB", "FR", "DE"]),
            "attributes": {"tier": rng.choice(["gold", "silver"]), "age": rng.randint(18, 80)},
        }
        for i in range(60)
    ]
    ids = services.customer_bulk_upsert(workspace=workspace, rows=rows).ids
    services.product_bulk_upsert(workspace=workspace, rows=[{"sku": "A", "name": "A"}])
    facts = {}
    orders, events = [], []
    for i, pk in ids.items():
        n_orders = rng.choice([0, 0, 1, 2, 3, 5])
        days = [rng.randint(1, 200) for _ in range(n_orders)]
        amounts = [rng.choice([10, 50, 120]) for _ in range(n_orders)]
        for j, (d, amount) in enumerate(zip(days, amounts, strict=True)):
            orders.append(
                {
                    "external_id": f"{i}-{j}",
                    "customer": pk,
                    "placed_at": (NOW - timedelta(days=d)).isoformat(),
                    "lines": [{"sku": "A", "quantity": 1, "unit_price": amount}],
                }
            )
        views = [rng.randint(1, 60) for _ in range(rng.choice([0, 1, 4]))]
        for d in views:
            events.append(
                {
                    "customer": pk,
                    "type": "view",
                    "occurred_at": (NOW - timedelta(days=d)).isoformat(),
                }
            )
        churn = rng.random()
        CustomerScore.objects.create(
            workspace=workspace, customer_id=pk, kind="churn_risk", value=churn, computed_at=NOW
        )
        facts[pk] = {
            "country": rows[i]["country"],
            "tier": rows[i]["attributes"]["tier"],
            "age": rows[i]["attributes"]["age"],
            "order_days": days,
            "amounts": amounts,
            "view_days": views,
            "churn": churn,
        }
    assert not services.order_bulk_upsert(workspace=workspace, rows=orders).errors
    assert not services.event_bulk_create(workspace=workspace, rows=events).errors
    return facts


ORACLE_CASES = [
    ({"attribute": "country", "op": "eq", "value": "gb"}, lambda f: f["country"] == "GB"),
    ({"attribute": "country", "op": "in", "value": ["FR", "DE"]}, lambda f: f["country"] != "GB"),
    ({"attribute": "attributes.tier", "op": "eq", "value": "gold"}, lambda f: f["tier"] == "gold"),
    ({"attribute": "attributes.age", "op": "gte", "value": 50}, lambda f: f["age"] >= 50),
    ({"orders": {"op": "gte", "value": 2}, "within_days": 90},
     lambda f: sum(d <= 90 for d in f["order_days"]) >= 2),
    ({"orders": {"op": "lt", "value": 2}, "within_days": 90},
     lambda f: sum(d <= 90 for d in f["order_days"]) < 2),
    ({"orders": {"op": "eq", "value": 0}}, lambda f: not f["order_days"]),
    ({"orders": {"op": "gte", "value": 100}, "metric": "revenue"},
     lambda f: sum(f["amounts"]) >= 100),
    ({"orders": {"op": "lte", "value": 50}, "metric": "revenue"},
     lambda f: sum(f["amounts"]) <= 50),
    ({"event": "view", "count": {"op": "gte", "value": 3}, "within_days": 30},
     lambda f: sum(d <= 30 for d in f["view_days"]) >= 3),
    ({"event": "view"}, lambda f: bool(f["view_days"])),
    ({"score": "churn_risk", "op": "gt", "value": 0.6}, lambda f: f["churn"] > 0.6),
    ({"all": [{"attribute": "country", "op": "eq", "value": "GB"},
              {"orders": {"op": "gte", "value": 2}, "within_days": 90},
              {"score": "churn_risk", "op": "gt", "value": 0.6}]},
     lambda f: f["country"] == "GB" and sum(d <= 90 for d in f["order_days"]) >= 2
     and f["churn"] > 0.6),
    ({"any": [{"not": {"attribute": "country", "op": "eq", "value": "GB"}},
              {"event": "view", "count": {"op": "eq", "value": 0}}]},
     lambda f: f["country"] != "GB" or not f["view_days"]),
    # An attribute beside a behaviour count makes the count a per-customer probe: same answers.
    ({"all": [{"attribute": "country", "op": "ne", "value": "DE"},
              {"event": "view", "count": {"op": "lt", "value": 2}, "within_days": 30}]},
     lambda f: f["country"] != "DE" and sum(d <= 30 for d in f["view_days"]) < 2),
    ({"all": [{"attribute": "country", "op": "ne", "value": "DE"},
              {"event": "view", "count": {"op": "eq", "value": 1}}]},
     lambda f: f["country"] != "DE" and len(f["view_days"]) == 1),
    ({"all": [{"attribute": "attributes.tier", "op": "eq", "value": "gold"},
              {"orders": {"op": "gt", "value": 1.5}, "within_days": 120}]},
     lambda f: f["tier"] == "gold" and sum(d <= 120 for d in f["order_days"]) > 1.5),
    ({"all": [{"attribute": "attributes.tier", "op": "eq", "value": "silver"},
              {"orders": {"op": "lte", "value": 1}}]},
     lambda f: f["tier"] == "silver" and len(f["order_days"]) <= 1),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("rules,oracle", ORACLE_CASES)
def test_compiled_rules_match_the_oracle(workspace, population, rules, oracle):
    got = set(segments.customers_matching(workspace, rules, now=NOW).values_list("pk", flat=True))
    expected = {pk for pk, facts in population.items() if oracle(facts)}
    assert got == expected
    assert 0 < len(expected) < len(population) or rules.get("orders") == {"op": "eq", "value": 0}


@pytest.mark.django_db
def test_rule_is_one_query(workspace, population, django_assert_num_queries):
    rules = ORACLE_CASES[12][0]
    with django_assert_num_queries(1):
        segments.customers_matching(workspace, rules, now=NOW).count()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rules,message",
    [
        ({}, "non-empty"),
        ({"all": []}, "rules.all: must be a non-empty list"),
        ({"all": [{"attribute": "shoe", "op": "eq", "value": 1}]}, "rules.all[0].attribute"),
        ({"attribute": "country", "op": "like", "value": "x"}, "rules.op: unknown operator"),
        ({"orders": {"op": "gte"}}, "rules.orders"),
        ({"orders": {"op": "gte", "value": 1}, "within_days": -3}, "within_days"),
        ({"score": "churn_risk", "op": "gt", "value": "high"}, "rules.value"),
        ({"event": "view", "where": {"a__b": 1}}, "rules.where"),
        ({"as_of": "soon", "event": "view"}, "as_of"),
        ({"frobnicate": 1}, "expected one of"),
    ],
)
def test_bad_rules_say_where(workspace, rules, message):
    with pytest.raises(segments.RuleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        segments.compile_rules(workspace, rules)


@pytest.mark.django_db
def test_refresh_adds_and_removes_members_incrementally(workspace, population):
    rules = {"as_of": NOW.isoformat(), "score": "churn_risk", "op": "gt", "value": 0.6}
    segment = segment_services.segment_save(workspace=workspace, name="risky", rules=rules)
    first = segment_services.segment_refresh(segment=segment)
    expected = {pk for pk, f in population.items() if f["churn"] > 0.6}
    assert first["added"] == len(expected) and first["removed"] == 0
    assert set(segment.memberships.values_list("customer_id", flat=True)) == expected

    leaving = next(iter(expected))
    joining = next(pk for pk in population if pk not in expected)
    CustomerScore.objects.filter(customer_id=leaving).update(value=0.1)
    CustomerScore.objects.filter(customer_id=joining).update(value=0.9)
    # only `leaving` is re-evaluated: `joining` waits for its own turn
    partial = segment_services.segment_refresh(segment=segment, customer_ids=[leaving])
    assert partial == {"added": 0, "removed": 1, "members": len(expected) - 1}
    again = segment_services.segment_refresh(segment=segment, customer_ids=[joining, leaving])
    assert again["added"] == 1 and again["removed"] == 0
    segment.refresh_from_db()
    assert segment.member_count == len(expected)


@pytest.mark.django_db
def test_segment_api(workspace, other_workspace, population):
    api = client_for(workspace)
    bad = api.post(
        "/api/v1/segments",
        {"name": "x", "rules": {"all": [{"attribute": "country", "op": "??", "value": 1}]}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["rules"] == ["rules.all[0].op: unknown operator '??'"]
    created = api.post(
        "/api/v1/segments",
        {"name": "GB", "rules": {"attribute": "country", "op": "eq", "value": "GB"}},
        format="json",
    )
    assert created.status_code == 201
    pk = created.json()["id"]
    gb = sum(f["country"] == "GB" for f in population.values())
    assert api.get(f"/api/v1/segments/{pk}/count").json() == {"count": gb, "materialised": 0}
    preview = api.get(f"/api/v1/segments/{pk}/preview").json()["results"]
    assert preview and all(row["country"] == "GB" for row in preview)
    adhoc = api.post(
        "/api/v1/segments/preview",
        {"rules": {"attribute": "country", "op": "ne", "value": "GB"}},
        format="json",
    )
    assert adhoc.json()["count"] == len(population) - gb
    duplicate = api.post("/api/v1/segments", {"name": "GB", "rules": {"event": "view"}})
    assert duplicate.status_code == 400

    static = api.post("/api/v1/segments", {"name": "VIP", "kind": "static"}, format="json")
    vip = static.json()["id"]
    theirs = Customer.objects.create(workspace=other_workspace, email="t@x.io")
    some = list(population)[:3]
    added = api.post(f"/api/v1/segments/{vip}/members", {"customers": [*some, theirs.pk]})
    assert added.json() == {"added": 3}  # the other workspace's customer is not added
    members = api.get(f"/api/v1/segments/{vip}/members").json()["results"]
    assert sorted(row["id"] for row in members) == sorted(some)
    other_api = client_for(other_workspace)
    assert other_api.get(f"/api/v1/segments/{vip}/members").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_new_events_refresh_memberships_through_the_worker(workspace, live_worker):
    api = client_for(workspace)
    ids = services.customer_bulk_upsert(
        workspace=workspace, rows=[{"email": f"w{i}@x.io"} for i in range(3)]
    ).ids
    segment = segment_services.segment_save(
        workspace=workspace,
        name="viewers",
        rules={"event": "view", "count": {"op": "gte", "value": 2}},
    )
    segment_services.segment_refresh(segment=segment)
    assert segment.memberships.count() == 0
    now = datetime.now(UTC).isoformat()
    rows = [{"customer": ids[0], "type": "view", "occurred_at": now} for _ in range(2)]
    rows.append({"customer": ids[1], "type": "view", "occurred_at": now})
    assert api.post("/api/v1/events/bulk", rows, format="json").json()["created"] == 3
    wait_until(lambda: segment.memberships.count() == 1, timeout=30)
    assert segment.memberships.get().customer_id == ids[0]

    response = api.post(f"/api/v1/segments/{segment.pk}/refresh")
    assert response.status_code == 202
    task_url = response.json()["url"]
    wait_until(lambda: api.get(task_url).json()["status"] == "succeeded", timeout=30)
    assert api.get(task_url).json()["result"]["members"] == 1


def test_uses_behaviour():
    assert segments.uses_behaviour({"all": [{"attribute": "country"}, {"event": "view"}]})
    assert not segments.uses_behaviour({"attribute": "country", "op": "eq", "value": "GB"})


@pytest.mark.django_db
def test_erased_customers_never_match(workspace, population):
    pk = next(iter(population))
    services.privacy_erase(customer=Customer.objects.get(pk=pk), actor="test")
    matched = segments.customers_matching(workspace, {"attribute": "created_at", "op": "exists"})
    assert pk not in set(matched.values_list("pk", flat=True))
    assert not Event.objects.filter(customer_id=pk).exists()
    assert Order.objects.filter(customer_id=pk).count() == 0
    assert not SegmentMembership.objects.filter(customer_id=pk).exists()
    assert Segment.objects.count() == 0
