"""Every workspace is sealed from every other, through every path of the API.

Workspace B holds one of everything; a key of workspace A with every scope asks for each of B's
objects through every route that takes an id (every method the route answers), names B's objects
in request bodies, filters, rules and chat, and reads every list. Each must answer 404 (or 400 for
a body that names something A cannot see) and no answer may carry B's data. The routes are read
from the URL configuration, so a new route that takes an id fails here until it is listed.
"""

import re
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.journeys.engine import enrol
from campaigns.journeys.services import journey_publish
from campaigns.models import (
    Campaign,
    Journey,
    Message,
    Variant,
    WebhookDelivery,
    WebhookEndpoint,
)
from crm import services
from crm.models import (
    ApiKey,
    ChatMessage,
    Conversation,
    Customer,
    Event,
    ExternalIdentity,
    Order,
    Product,
    Segment,
    SegmentMembership,
    Workspace,
)
from tests.api_routes import api_routes
from workers.models import TaskRun

SECRET = "bee-only"  # in every text field of B's objects: no answer to A may contain it


def api_for(workspace: Workspace) -> APIClient:
    _, secret = services.api_key_create(workspace=workspace, name="all", scopes=list(ApiKey.SCOPES))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def b_objects(db) -> dict:
    b = Workspace.objects.create(slug="bee", name=f"B {SECRET}")
    now = timezone.now()
    customer = Customer.objects.create(
        workspace=b, email=f"{SECRET}@b.example", first_name=SECRET, attributes={"note": SECRET}
    )
    ExternalIdentity.objects.create(workspace=b, customer=customer, source="shop", external_id="7")
    product = Product.objects.create(
        workspace=b,
        sku="bee-sku",  # sent back by A in bodies: an echo is no leak
        name=SECRET,
        price=5,
    )
    order = Order.objects.create(
        workspace=b, customer=customer, external_id=f"{SECRET}-o1", placed_at=now, total=10
    )
    event = Event.objects.create(
        workspace=b, customer=customer, type="view", properties={"note": SECRET}, occurred_at=now
    )
    segment = Segment.objects.create(workspace=b, name=f"{SECRET} seg", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.create(segment=segment, customer=customer)
    campaign = Campaign.objects.create(workspace=b, name=f"{SECRET} campaign")
    campaign.include_segments.add(segment)
    variant = Variant.objects.create(
        campaign=campaign, name="A", subject=SECRET, body_html=f"<p>{SECRET}</p>"
    )
    message = Message.objects.create(
        campaign=campaign, customer=customer, variant=variant, send_at=now, address=customer.email
    )
    endpoint = WebhookEndpoint.objects.create(
        workspace=b, url=f"https://{SECRET}.example/hook", secret=SECRET
    )
    WebhookDelivery.objects.create(
        endpoint=endpoint, event="message.sent", payload={"note": SECRET}, next_attempt_at=now
    )
    run = TaskRun.objects.create(
        kind="workers.tasks.selfcheck", workspace=b, params={"note": SECRET}, message=SECRET
    )
    conversation = Conversation.objects.create(
        workspace=b, customer=customer, token=f"{SECRET}-{uuid.uuid4().hex}"
    )
    ChatMessage.objects.create(conversation=conversation, role="customer", text=SECRET)
    journey = Journey.objects.create(
        workspace=b,
        name=f"{SECRET} journey",
        definition={"start": "d", "steps": {"d": {"type": "delay", "duration": "1d", "next": "e"},
                                            "e": {"type": "exit"}}},
    )  # fmt: skip
    journey_publish(journey=journey)
    journey.refresh_from_db()
    (enrolment_id,) = enrol(version=journey.version, entrants=[(customer.pk, {"note": SECRET})])
    return {
        "workspace": b,
        "customer": customer,
        "product": product,
        "order": order,
        "event": event,
        "segment": segment,
        "campaign": campaign,
        "variant": variant,
        "message": message,
        "webhook": endpoint,
        "run": run,
        "conversation": conversation,
        "journey": journey,
        "enrolment": enrolment_id,
    }


@pytest.fixture
def a_side(db):
    a = Workspace.objects.create(slug="ay", name="A")
    campaign = Campaign.objects.create(workspace=a, name="A campaign")
    Variant.objects.create(campaign=campaign, name="A", subject="hi", body_html="<p>hi</p>")
    return a, api_for(a), campaign


def b_paths(b: dict) -> dict[str, list[str]]:
    """For each API route that takes an id, the paths that name B's objects through it."""
    c, camp = b["customer"], b["campaign"]
    refs = [str(c.pk), "ext:shop:7", f"email:{c.email}"]
    return {
        r"customers/(?P<ref>[^/]+)": [f"customers/{r}" for r in refs],
        r"customers/(?P<ref>[^/]+)/timeline": [f"customers/{r}/timeline" for r in refs],
        r"customers/(?P<ref>[^/]+)/recommendations": [
            f"customers/{r}/recommendations" for r in refs
        ],
        "products/<int:pk>": [f"products/{b['product'].pk}"],
        "orders/<int:pk>": [f"orders/{b['order'].pk}"],
        "events/<int:pk>": [f"events/{b['event'].pk}"],
        "segments/<int:pk>": [f"segments/{b['segment'].pk}"],
        "segments/<int:pk>/count": [f"segments/{b['segment'].pk}/count"],
        "segments/<int:pk>/preview": [f"segments/{b['segment'].pk}/preview"],
        "segments/<int:pk>/members": [f"segments/{b['segment'].pk}/members"],
        "segments/<int:pk>/refresh": [f"segments/{b['segment'].pk}/refresh"],
        "chat/conversations/<int:pk>": [f"chat/conversations/{b['conversation'].pk}"],
        "chat/<str:token>": [f"chat/{b['conversation'].token}"],
        "tasks/<uuid:run_id>": [f"tasks/{b['run'].pk}"],
        "campaigns/<int:pk>": [f"campaigns/{camp.pk}"],
        **{
            f"campaigns/<int:pk>/{action}": [f"campaigns/{camp.pk}/{action}"]
            for action in (
                "launch",
                "pause",
                "resume",
                "cancel",
                "resend-failed",
                "stats",
                "messages",
                "policy-evaluation",
                "variants",
            )
        },
        "campaigns/<int:pk>/variants/<int:variant_pk>": [
            f"campaigns/{camp.pk}/variants/{b['variant'].pk}"
        ],
        "campaigns/<int:pk>/variants/<int:variant_pk>/approve": [
            f"campaigns/{camp.pk}/variants/{b['variant'].pk}/approve"
        ],
        "webhooks/<int:pk>": [f"webhooks/{b['webhook'].pk}"],
        "webhooks/<int:pk>/deliveries": [f"webhooks/{b['webhook'].pk}/deliveries"],
        r"customers/(?P<ref>[^/]+)/journeys": [f"customers/{r}/journeys" for r in refs],
        "journeys/<int:pk>": [f"journeys/{b['journey'].pk}"],
        **{
            f"journeys/<int:pk>/{action}": [f"journeys/{b['journey'].pk}/{action}"]
            for action in ("publish", "pause", "resume", "stop", "move", "stats", "enrolments")
        },
        "journeys/<int:pk>/enrolments/<int:enrolment_pk>/exit": [
            f"journeys/{b['journey'].pk}/enrolments/{b['enrolment']}/exit"
        ],
    }


BODIES = {
    "GET": None,
    "PATCH": {"name": "mine now", "first_name": "x", "subject": "x", "url": "https://a.example/h"},
    "PUT": {"name": "mine now"},
    "POST": {},
    "DELETE": None,
}


def assert_sealed(response, where: str, allowed=(404,)) -> None:
    assert response.status_code in allowed, (where, response.status_code, response.content[:300])
    assert SECRET.encode() not in response.content, (where, response.content[:300])


@pytest.mark.django_db
def test_every_route_that_takes_an_id_answers_404_for_another_workspaces_objects(b_objects, a_side):
    _, api, _ = a_side
    routes = api_routes()
    paths = b_paths(b_objects)
    # A template's name names no workspace's object: there is nothing of B's to reach by it.
    no_objects = {"journeys/templates/<str:name>"}
    with_ids = [r for r in routes if ("<" in r or "(?P" in r) and r not in no_objects]
    missing = sorted(set(with_ids) - set(paths))
    assert not missing, f"routes not covered by the isolation test: {missing}"
    asked = 0
    for route in with_ids:
        for path in paths[route]:
            for method in ("GET", "PATCH", "PUT", "POST", "DELETE"):
                response = getattr(api, method.lower())(f"/api/v1/{path}", BODIES[method])
                if response.status_code == 405:
                    continue
                assert_sealed(response, f"{method} {path}")
                asked += 1
    assert asked >= 40
    # Nothing of B's changed or vanished.
    b = b_objects
    assert Customer.objects.filter(pk=b["customer"].pk, first_name=SECRET).exists()
    assert Campaign.objects.filter(
        pk=b["campaign"].pk, status="draft", name=f"{SECRET} campaign"
    ).exists()
    assert Variant.objects.filter(pk=b["variant"].pk, subject=SECRET, status="draft").exists()
    assert WebhookEndpoint.objects.filter(pk=b["webhook"].pk, active=True).exists()
    for kind in ("product", "order", "event", "segment", "message", "conversation", "run"):
        assert type(b[kind]).objects.filter(pk=b[kind].pk).exists(), kind


@pytest.mark.django_db
def test_a_variant_of_another_workspace_is_404_under_ones_own_campaign(b_objects, a_side):
    _, api, campaign = a_side
    variant = b_objects["variant"]
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(
            f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}", {"subject": "x"}
        )
        assert_sealed(response, method)
    assert_sealed(
        api.post(f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}/approve"), "approve"
    )
    assert Variant.objects.get(pk=variant.pk).subject == SECRET


@pytest.mark.django_db
def test_lists_filters_and_exports_show_nothing_of_another_workspace(b_objects, a_side):
    _, api, _ = a_side
    b = b_objects
    lists = [r for r in api_routes() if "<" not in r and "(?P" not in r]
    for route in lists:
        response = api.get(f"/api/v1/{route}")
        if response.status_code == 405:
            continue
        assert response.status_code in (200, 400), (route, response.status_code)
        assert SECRET.encode() not in response.content, route
    queries = [
        f"customers?email={b['customer'].email}",
        "customers?country=",
        f"orders?customer={b['customer'].pk}",
        f"events?customer={b['customer'].pk}",
        f"products?sku={b['product'].sku}",
        f"orders?customer=email:{b['customer'].email}",
        "campaigns?status=draft",
    ]
    for query in queries:
        response = api.get(f"/api/v1/{query}")
        assert response.status_code in (200, 400, 404), (query, response.status_code)
        assert SECRET.encode() not in response.content, query
    for route in ("privacy/export", "privacy/erase"):
        for ref in (str(b["customer"].pk), "ext:shop:7", f"email:{b['customer'].email}"):
            response = api.post(f"/api/v1/{route}", {"customer": ref})
            assert_sealed(response, f"{route} {ref}", allowed=(400, 404))
    assert Customer.objects.get(pk=b["customer"].pk).erased_at is None


@pytest.mark.django_db
def test_bodies_that_name_another_workspaces_objects_are_refused(b_objects, a_side):
    a, api, campaign = a_side
    b = b_objects
    c = b["customer"]
    now = timezone.now().isoformat()
    journey = Journey.objects.create(workspace=a, name="A journey", definition={
        "start": "e", "steps": {"e": {"type": "exit"}}})  # fmt: skip
    journey_publish(journey=journey)
    refused = [
        ("orders", {"external_id": "o-x", "customer": str(c.pk), "placed_at": now, "total": "1"}),
        ("orders", {"external_id": "o-y", "customer": f"email:{c.email}", "placed_at": now}),
        ("events", {"customer": str(c.pk), "type": "view", "occurred_at": now}),
        ("campaigns", {"name": "steal", "include_segments": [b["segment"].pk]}),
        ("campaigns", {"name": "steal2", "exclude_segments": [b["segment"].pk]}),
        ("content/generate", {"campaign": b["campaign"].pk, "products": [b["product"].sku],
                              "goal": "x"}),
        ("content/generate", {"campaign": campaign.pk, "products": [b["product"].sku],
                              "goal": "x"}),
        ("chat", {"message": "my orders?", "customer": f"email:{c.email}"}),
        ("chat", {"message": "hello", "conversation": b["conversation"].token}),
        (f"journeys/{journey.pk}/enrolments", {"customer": str(c.pk)}),
        (f"journeys/{journey.pk}/enrolments", {"customer": f"email:{c.email}"}),
    ]  # fmt: skip
    for route, body in refused:
        response = api.post(f"/api/v1/{route}", body)
        assert_sealed(response, f"{route} {body}", allowed=(400, 404))
    # Bulk rows that name B's customer are reported per row; nothing attaches to B.
    response = api.post(
        "/api/v1/orders/bulk", [{"external_id": "o-z", "customer": "ext:shop:7", "placed_at": now}]
    )
    assert response.status_code in (200, 207, 400) and not response.json().get("results")
    assert not Order.objects.filter(workspace=a).exists()
    assert Order.objects.filter(customer=c).count() == 1
    # The same external id in A is A's own customer, a different person.
    response = api.post(
        "/api/v1/customers/bulk",
        [{"source": "shop", "external_id": "7", "email": c.email, "first_name": "Ann"}],
    )
    assert response.status_code == 200, response.content
    mine = Customer.objects.get(workspace=a, email=c.email)
    assert mine.pk != c.pk and Customer.objects.get(pk=c.pk).first_name == SECRET


@pytest.mark.django_db
def test_rules_reach_only_ones_own_workspace(b_objects, a_side):
    a, api, _ = a_side
    b = b_objects
    Customer.objects.create(workspace=a, email="a1@a.example", first_name="A1")
    rules = [
        {"segment": b["segment"].pk},
        {"attribute": "email", "op": "contains", "value": SECRET},
        {"event": "view", "count": {"op": "gte", "value": 1}},
        {"orders": {"op": "gte", "value": 1}},
        {
            "any": [
                {"segment": b["segment"].pk},
                {"attribute": "first_name", "op": "eq", "value": SECRET},
            ]
        },
    ]
    for rule in rules:
        response = api.post("/api/v1/segments/preview", {"rules": rule})
        assert response.status_code in (200, 400), (rule, response.content)
        assert SECRET.encode() not in response.content, rule
        if response.status_code == 200:
            assert response.json().get("count", 0) == 0, rule
        saved = api.post(
            "/api/v1/segments", {"name": f"s{rules.index(rule)}", "kind": "rules", "rules": rule}
        )
        if saved.status_code == 201:
            pk = saved.json()["id"]
            for tail in ("count", "preview", "members"):
                response = api.get(f"/api/v1/segments/{pk}/{tail}")
                assert response.status_code == 200 and SECRET.encode() not in response.content


@pytest.mark.django_db
def test_the_public_chat_widget_does_not_open_another_workspaces_conversation(
    b_objects, a_side, client
):
    a, _, _ = a_side
    token = b_objects["conversation"].token
    response = client.get(f"/chat/{a.slug}/messages", {"conversation": token, "after": "0"})
    assert SECRET.encode() not in response.content
    response = client.post(
        f"/chat/{a.slug}/messages",
        {"conversation": token, "message": "hi"},
        content_type="application/json",
    )
    assert SECRET.encode() not in response.content
    assert not ChatMessage.objects.filter(
        conversation=b_objects["conversation"], text="hi"
    ).exists()


def test_the_list_of_routes_is_read_from_the_url_configuration():
    routes = api_routes()
    assert "campaigns/<int:pk>/variants/<int:variant_pk>" in routes
    assert any(re.search(r"customers/\(\?P<ref>", r) for r in routes)
    assert len(routes) > 30
