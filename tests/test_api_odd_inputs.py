"""The odd inputs an outside review sent, against every endpoint that takes them: JSON nested
deeper than a field may hold, NUL characters, a body over the limit, moments that overflow when
converted to UTC, digits of other scripts and integers beyond bigint. Each answers 400 (413 for
the body) naming the field; a bulk batch keeps its good rows and names the bad row by index.

Run on SQLite and PostgreSQL alike (PostgreSQL refuses NUL in text and jsonb: there a bad row
used to lose the whole batch).
"""

import base64
import io
import json

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign, Variant
from crm import services
from crm.models import ApiKey, Customer, Event, Order, Product, Segment, Workspace

pytestmark = pytest.mark.django_db

BIG = 2**63  # one past bigint
OVERFLOW = "9999-12-31T23:59:59-10:00"  # 10000-01-01 09:59:59 in UTC
YEAR_ONE = "0001-01-01T00:00:00+01:00"  # year 0 in UTC
SUPERSCRIPT, ARABIC = "\u00b2", "\u0661\u0662"  # "²".isdigit() is True; int("١٢") is 12


def deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.fixture
def env(db):
    workspace = Workspace.objects.create(slug="acme", name="Acme")
    _, secret = services.api_key_create(workspace=workspace, name="t", scopes=list(ApiKey.SCOPES))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    customer = services.customer_bulk_upsert(
        workspace=workspace, rows=[{"source": "shop", "external_id": "c1", "email": "c1@acme.io"}]
    ).ids[0]
    services.product_bulk_upsert(workspace=workspace, rows=[{"sku": "P1", "name": "Pot"}])
    campaign = Campaign.objects.create(workspace=workspace, name="Spring")
    variant = Variant.objects.create(campaign=campaign, name="A", subject="Hi")
    static = Segment.objects.create(workspace=workspace, name="Picked", kind="static")
    ids = {"c": customer, "campaign": campaign.pk, "variant": variant.pk, "static": static.pk}
    return {"api": api, "workspace": workspace, "ids": ids}


def event(**extra) -> dict:
    return {
        "customer": "ext:shop:c1",
        "type": "view",
        "occurred_at": "2026-01-01T00:00:00Z",
        **extra,
    }


def order(**extra) -> dict:
    return {
        "external_id": "o1",
        "customer": "ext:shop:c1",
        "placed_at": "2026-01-01T00:00:00Z",
        "lines": [{"sku": "P1", "quantity": 1, "unit_price": 5}],
        **extra,
    }


def rules_with(condition: dict, **root) -> dict:
    return {"all": [condition], **root}


GEN = {"products": ["P1"], "goal": "sell pots"}

# (name, method, url, body, the field the 400 names); {c}, {campaign}, ... are seeded ids.
CASES = [
    # JSON nested deeper than a field may hold (32 levels); a 260-deep one used to be stored.
    ("deep attributes", "post", "/api/v1/customers",
     {"email": "d@x.io", "attributes": deep(260)}, "attributes"),
    ("deep attributes, update", "patch", "/api/v1/customers/{c}",
     {"attributes": deep(40)}, "attributes"),
    ("deep properties", "post", "/api/v1/events", event(properties=deep(40)), "properties"),
    ("deep rules", "post", "/api/v1/segments",
     {"name": "Deep", "rules": rules_with({"attribute": "attributes.a", "op": "eq",
                                           "value": deep(40)})}, "rules"),
    ("deep rules, preview", "post", "/api/v1/segments/preview",
     {"rules": rules_with({"event": "view", "where": {"k": deep(40)}})}, "rules"),
    ("deep provenance", "patch", "/api/v1/campaigns/{campaign}/variants/{variant}",
     {"provenance": deep(40)}, "provenance"),
    ("body deeper than can be stored", "post", "/api/v1/customers/bulk",
     {"rows": [{"email": "d@x.io", "attributes": deep(300)}]}, "rows[0].attributes"),
    # NUL characters (PostgreSQL refuses them in text and jsonb)
    ("NUL in text", "post", "/api/v1/customers", {"email": "n@x.io", "first_name": "a\x00b"},
     "first_name"),
    ("NUL in an attribute", "post", "/api/v1/customers",
     {"email": "n@x.io", "attributes": {"k": ["a\x00"]}}, "attributes"),
    ("NUL in an attribute's key", "patch", "/api/v1/customers/{c}",
     {"attributes": {"k\x00": 1}}, "attributes"),
    ("NUL in a SKU", "post", "/api/v1/products", {"sku": "P\x00", "name": "x"}, "sku"),
    ("NUL in an order id", "post", "/api/v1/orders", order(external_id="o\x00"), "external_id"),
    ("NUL in a line's SKU", "post", "/api/v1/orders",
     order(lines=[{"sku": "P\x00", "quantity": 1, "unit_price": 1}]), "lines[0].sku"),
    ("NUL in an event type", "post", "/api/v1/events", event(type="vi\x00ew"), "type"),
    ("NUL in properties", "post", "/api/v1/events", event(properties={"q": "\x00"}),
     "properties"),
    ("NUL in a customer reference", "post", "/api/v1/events", event(customer="ext:shop:\x00"),
     "customer"),
    ("NUL in a segment name", "post", "/api/v1/segments", {"name": "S\x00", "kind": "static"},
     "name"),
    ("NUL in a rule", "post", "/api/v1/segments/preview",
     {"rules": rules_with({"attribute": "email", "op": "eq", "value": "a\x00@x.io"})}, "rules"),
    ("NUL in a variant", "patch", "/api/v1/campaigns/{campaign}/variants/{variant}",
     {"provenance": {"brief": "\x00"}}, "provenance"),
    ("NUL in a campaign name", "patch", "/api/v1/campaigns/{campaign}", {"name": "a\x00"},
     "name"),
    ("NUL in a privacy reference", "post", "/api/v1/privacy/export",
     {"customer": "ext:shop:c\x00"}, "customer"),
    ("NUL in a query filter", "get", "/api/v1/customers?email=a%00b", None, "email"),
    ("NUL in a campaign filter", "get", "/api/v1/campaigns?status=dr%00aft", None, "status"),
    ("NUL in a message filter", "get", "/api/v1/campaigns/{campaign}/messages?state=%00", None,
     "state"),
    ("NUL in a path", "get", "/api/v1/chat/abc%00", None, "token"),
    ("NUL in a path reference", "get", "/api/v1/customers/ext:shop:c%00", None, "ref"),
    # moments that overflow on conversion to UTC, and year 1 with within_days
    ("occurred_at overflows", "post", "/api/v1/events", event(occurred_at=OVERFLOW),
     "occurred_at"),
    ("placed_at overflows", "post", "/api/v1/orders", order(placed_at=OVERFLOW), "placed_at"),
    ("cancelled_at before year 1", "post", "/api/v1/orders", order(cancelled_at=YEAR_ONE),
     "cancelled_at"),
    ("updated_since overflows", "get", f"/api/v1/customers?updated_since={OVERFLOW}", None,
     "updated_since"),
    ("placed_since before year 1", "get", f"/api/v1/orders?placed_since={YEAR_ONE}", None,
     "placed_since"),
    ("event filter overflows", "get", f"/api/v1/events?before={OVERFLOW}", None, "before"),
    ("as_of year 1 with within_days", "post", "/api/v1/segments/preview",
     {"rules": rules_with({"event": "view", "within_days": 30}, as_of="0001-01-01T00:00:00Z")},
     "rules"),
    ("as_of overflows", "post", "/api/v1/segments",
     {"name": "Late", "rules": rules_with({"orders": {"op": "gte", "value": 1}}, as_of=OVERFLOW)},
     "rules"),
    ("created_at rule overflows", "post", "/api/v1/segments/preview",
     {"rules": rules_with({"attribute": "created_at", "op": "gt", "value": OVERFLOW})}, "rules"),
    ("send_at overflows", "patch", "/api/v1/campaigns/{campaign}",
     {"timing": "at", "send_at": OVERFLOW}, "send_at"),
    # digits of other scripts in references
    ("superscript customer path", "get", f"/api/v1/customers/{SUPERSCRIPT}", None, "ref"),
    ("arabic-indic customer path", "get", f"/api/v1/customers/{ARABIC}", None, "ref"),
    ("superscript timeline", "get", f"/api/v1/customers/{SUPERSCRIPT}/timeline", None, "ref"),
    ("superscript erase", "delete", f"/api/v1/customers/{SUPERSCRIPT}", None, "ref"),
    ("superscript event customer", "post", "/api/v1/events", event(customer=SUPERSCRIPT),
     "customer"),
    ("arabic-indic order customer", "post", "/api/v1/orders", order(customer=ARABIC), "customer"),
    ("arabic-indic quantity", "post", "/api/v1/orders",
     order(lines=[{"sku": "P1", "quantity": ARABIC, "unit_price": 1}]), "lines[0].quantity"),
    ("superscript privacy reference", "post", "/api/v1/privacy/export", {"customer": SUPERSCRIPT},
     "customer"),
    ("superscript segment filter", "get", f"/api/v1/customers?segment={SUPERSCRIPT}", None,
     "segment"),
    ("arabic-indic order filter", "get", f"/api/v1/orders?customer={ARABIC}", None, "customer"),
    ("superscript product to write about", "post", "/api/v1/content/generate",
     {**GEN, "campaign": "{campaign}", "products": [SUPERSCRIPT]}, "products"),
    ("forged cursor", "get",
     "/api/v1/customers?cursor=" + base64.b64encode(b"p=abc").decode(), None, "cursor"),
    ("a return's bad quantity (the fuzzing's 500)", "post", "/api/v1/orders",
     order(kind="return", lines=[{"sku": "P1", "quantity": "x", "unit_price": 1}]),
     "lines[0].quantity"),
    # integers beyond bigint
    ("product id beyond bigint", "get", f"/api/v1/products/{BIG}", None, "id"),
    ("order id beyond bigint", "put", f"/api/v1/orders/{BIG}", order(), "id"),
    ("variant id beyond bigint", "get", f"/api/v1/campaigns/{{campaign}}/variants/{BIG}", None,
     "variant_pk"),
    ("customer id beyond bigint", "get", f"/api/v1/customers/{BIG}", None, "ref"),
    ("event customer beyond bigint", "post", "/api/v1/events", event(customer=BIG), "customer"),
    ("event filter beyond bigint", "get", f"/api/v1/events?customer={BIG}", None, "customer"),
    ("quantity beyond bigint", "post", "/api/v1/orders",
     order(lines=[{"sku": "P1", "quantity": BIG, "unit_price": 1}]), "lines[0].quantity"),
    ("attribute beyond bigint", "post", "/api/v1/customers",
     {"email": "b@x.io", "attributes": {"n": BIG}}, "attributes"),
    ("static members beyond bigint", "post", "/api/v1/segments/{static}/members",
     {"customers": [BIG]}, "customers"),
    ("segment rule beyond bigint", "post", "/api/v1/segments",
     {"name": "Big", "rules": rules_with({"segment": BIG})}, "rules"),
    ("score rule beyond bigint", "post", "/api/v1/segments/preview",
     {"rules": rules_with({"attribute": "attributes.n", "op": "gt", "value": BIG})}, "rules"),
    ("campaign to write for beyond bigint", "post", "/api/v1/content/generate",
     {**GEN, "campaign": BIG}, "campaign"),
    ("seed beyond bigint", "post", "/api/v1/content/generate",
     {**GEN, "campaign": "{campaign}", "seed": BIG}, "seed"),
    ("frequency cap beyond bigint", "patch", "/api/v1/campaigns/{campaign}",
     {"frequency_cap": BIG}, "frequency_cap"),
    ("variant weight beyond bigint", "post", "/api/v1/campaigns/{campaign}/variants",
     {"name": "B", "weight": BIG}, "weight"),
]  # fmt: skip


def fill(value, ids: dict):
    """The case's url or body with the seeded ids put in ({c}, "{campaign}", ...)."""
    if isinstance(value, str):
        for name, pk in ids.items():
            if value == f"{{{name}}}":
                return pk
            value = value.replace(f"{{{name}}}", str(pk))
        return value
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "url", "body", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_odd_input_answers_400_naming_the_field(env, method, url, body, field):
    api, ids = env["api"], env["ids"]
    url = fill(url, ids)
    kwargs = (
        {}
        if body is None
        else {"data": json.dumps(fill(body, ids)), "content_type": "application/json"}
    )
    response = getattr(api, method)(url, **kwargs)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert field in response.json(), response.json()


def test_nothing_odd_was_stored(env):
    """After all of the above, in one workspace: no row holds what was refused."""
    api, ids = env["api"], env["ids"]
    for _, method, url, body, _ in CASES:
        kwargs = (
            {}
            if body is None
            else {"data": json.dumps(fill(body, ids)), "content_type": "application/json"}
        )
        getattr(api, method)(fill(url, ids), **kwargs)
    assert Customer.objects.count() == 1 and Event.objects.count() == 0
    assert Order.objects.count() == 0 and Product.objects.count() == 1
    assert Segment.objects.count() == 1
    # every list still answers (a stored 260-deep object made them all 500)
    for url in (
        "/api/v1/customers",
        "/api/v1/events",
        "/api/v1/segments",
        f"/api/v1/campaigns/{ids['campaign']}/variants",
    ):
        assert api.get(url).status_code == 200, url
    export = api.post("/api/v1/privacy/export", {"customer": ids["c"]}, format="json")
    assert export.status_code == 200


BULK = [
    ("/api/v1/customers/bulk",
     [{"email": "good@x.io"}, {"email": "bad@x.io", "last_name": "x\x00"},
      {"email": "deep@x.io", "attributes": deep(40)}, {"email": "nul@x.io",
                                                        "attributes": {"a": "\x00"}}],
     {1: "last_name", 2: "attributes", 3: "attributes"}),
    ("/api/v1/events/bulk",
     [event(), event(properties={"q": "a\x00"}), event(occurred_at=OVERFLOW),
      event(customer=SUPERSCRIPT), event(type="\x00")],
     {1: "properties", 2: "occurred_at", 3: "customer", 4: "type"}),
    ("/api/v1/orders/bulk",
     [order(), order(external_id="o2", placed_at=OVERFLOW), order(external_id="o\x003"),
      order(external_id="o4", kind="return",
            lines=[{"sku": "P1", "quantity": ARABIC, "unit_price": 1}])],
     {1: "placed_at", 2: "external_id", 3: "lines[0].quantity"}),
    ("/api/v1/products/bulk",
     [{"sku": "P2", "name": "Jug"}, {"sku": "P3", "name": "J\x00g"},
      {"sku": "P4", "name": "Mug", "description": "\x00"}],
     {1: "name", 2: "description"}),
]  # fmt: skip


@pytest.mark.parametrize(("url", "rows", "bad"), BULK, ids=[b[0].split("/")[3] for b in BULK])
def test_bulk_keeps_the_good_rows_and_names_each_bad_one(env, url, rows, bad):
    response = env["api"].post(url, json.dumps(rows), content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["created"] == 1 and body["rejected"] == len(bad)
    assert {e["index"]: sorted(e["errors"]) for e in body["errors"]} == {
        i: [field] for i, field in bad.items()
    }
    assert [r["index"] for r in body["results"]] == [0]


def test_a_body_over_the_limit_gets_413(env, settings):
    settings.API_MAX_BODY_BYTES = 10_000
    rows = [{"email": f"u{i}@x.io"} for i in range(1000)]
    response = env["api"].post(
        "/api/v1/customers/bulk", json.dumps(rows), content_type="application/json"
    )
    assert response.status_code == 413
    assert "10000 bytes" in response.json()["body"][0]
    assert Customer.objects.count() == 1
    small = env["api"].post(
        "/api/v1/customers/bulk", json.dumps(rows[:10]), content_type="application/json"
    )
    assert small.status_code == 200 and small.json()["created"] == 10


def chunked(body: bytes, **environ) -> dict:
    """The WSGI environ of a body sent with Transfer-Encoding: chunked: no Content-Length (the
    test client always sets one; an empty one is what Django and DRF read as none)."""
    return {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        **environ,
    }


def test_a_chunked_body_the_server_did_not_finish_gets_411(env):
    """An outside tester's find: PATCH with Transfer-Encoding: chunked and no Content-Length
    answered 200 and changed nothing (Django reads Content-Length bytes: none)."""
    api, ref = env["api"], env["ids"]["c"]
    body = json.dumps({"first_name": "Chunky"}).encode()
    response = api.patch(
        f"/api/v1/customers/{ref}", body, content_type="application/json", **chunked(body)
    )
    assert response.status_code == 411, response.content[:300]
    assert "Content-Length" in response.json()["body"][0]
    assert Customer.objects.get(pk=ref).first_name == ""
    bulk = api.post(
        "/api/v1/customers/bulk",
        b"[]",
        content_type="application/json",
        **chunked(json.dumps([{"email": "new@x.io"}]).encode()),
    )
    assert bulk.status_code == 411 and Customer.objects.count() == 1


def test_a_chunked_body_the_server_read_whole_is_read(env, settings):
    """gunicorn decodes the chunks and sets wsgi.input_terminated: then the body is read, and
    still held to API_MAX_BODY_BYTES."""
    api, ref = env["api"], env["ids"]["c"]
    body = json.dumps({"first_name": "Chunky"}).encode()
    whole = chunked(body, **{"wsgi.input_terminated": True})
    response = api.patch(f"/api/v1/customers/{ref}", body, content_type="application/json", **whole)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["first_name"] == "Chunky"
    assert Customer.objects.get(pk=ref).first_name == "Chunky"
    settings.API_MAX_BODY_BYTES = 10_000
    rows = json.dumps([{"email": f"u{i}@x.io"} for i in range(1000)]).encode()
    big = api.post(
        "/api/v1/customers/bulk",
        b"[]",
        content_type="application/json",
        **chunked(rows, **{"wsgi.input_terminated": True}),
    )
    assert big.status_code == 413 and "10000 bytes" in big.json()["body"][0]
    assert Customer.objects.count() == 1
    # A body with its Content-Length is read as before, Transfer-Encoding or not.
    plain = api.patch(f"/api/v1/customers/{ref}", {"last_name": "Plain"}, format="json")
    assert plain.status_code == 200 and plain.json()["last_name"] == "Plain"


def test_an_idempotent_answer_echoing_nul_is_kept_and_replayed(env):
    """Error reports echo the client's keys and values; storing one with a NUL for the replay
    failed on PostgreSQL (500), found by the fuzzing."""
    api = env["api"]
    rows = json.dumps([{"email": "a@x.io"}, {"email": "b@x.io", "o\x00ps": 1}])
    first = api.post(
        "/api/v1/customers/bulk", rows, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert first.status_code == 200, first.content[:300]
    assert first.json()["errors"] == [{"index": 1, "errors": {"o\ufffdps": ["unknown field"]}}]
    again = api.post(
        "/api/v1/customers/bulk", rows, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    body = json.dumps({"name": "N", "channel": "e\x00mail"})
    refused = api.post(
        "/api/v1/campaigns", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    assert refused.status_code == 400 and "channel" in refused.json()


@pytest.mark.parametrize(
    "token", ["mai_ab\x00cd_secret", f"mai_{SUPERSCRIPT}_secret", "mai_" + "a" * 5000 + "_secret"]
)
def test_a_malformed_key_is_401_not_500(db, token):
    """The key's prefix is looked up; a NUL in it made PostgreSQL refuse the query (500)."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api.get("/api/v1/customers")
    assert response.status_code == 401 and response.json()["detail"] == "malformed API key"
