"""Every API route answers the same with a trailing slash as without one (marketing_ai.slash).

The routes are read from the URL configuration, so a route added later is covered too; each is
asked with real ids of one workspace's objects, so most answers are the objects themselves.
"""

import re
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, Variant, WebhookEndpoint
from crm import services
from crm.models import (
    ApiKey,
    Conversation,
    Customer,
    Event,
    Order,
    Product,
    Segment,
    SegmentMembership,
    Workspace,
)
from tests.api_routes import api_routes
from workers.models import TaskRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict:
    workspace = Workspace.objects.create(slug="w", name="W")
    now = timezone.now()
    customer = Customer.objects.create(workspace=workspace, email="a@x.io", first_name="Ann")
    product = Product.objects.create(workspace=workspace, sku="s1", name="Tea", price=5)
    order = Order.objects.create(workspace=workspace, customer=customer, external_id="o1",
                                 placed_at=now, total=5)  # fmt: skip
    event = Event.objects.create(workspace=workspace, customer=customer, type="view",
                                 occurred_at=now)  # fmt: skip
    segment = Segment.objects.create(workspace=workspace, name="s", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.create(segment=segment, customer=customer)
    campaign = Campaign.objects.create(workspace=workspace, name="c")
    variant = Variant.objects.create(campaign=campaign, name="A", subject="hi",
                                     body_html="<p>hi</p>")  # fmt: skip
    webhook = WebhookEndpoint.objects.create(workspace=workspace, url="https://x.example/h",
                                             secret="s")  # fmt: skip
    run = TaskRun.objects.create(kind="workers.tasks.selfcheck", workspace=workspace)
    conversation = Conversation.objects.create(workspace=workspace, customer=customer,
                                               token=uuid.uuid4().hex)  # fmt: skip
    _, secret = services.api_key_create(workspace=workspace, name="all",
                                        scopes=list(ApiKey.SCOPES))  # fmt: skip
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    # The id each route's placeholder stands for, by resource (the route's first segment).
    pks = {"customers": customer.pk, "products": product.pk, "orders": order.pk,
           "events": event.pk, "segments": segment.pk, "campaigns": campaign.pk,
           "webhooks": webhook.pk, "chat": conversation.pk}  # fmt: skip
    values = {"ref": customer.pk, "variant_pk": variant.pk, "run_id": run.pk,
              "token": conversation.token}  # fmt: skip
    return {"api": api, "pks": pks, "values": values}


PLACEHOLDER = re.compile(r"<(?:\w+:)?(?P<name>\w+)>|\(\?P<(?P<group>\w+)>[^)]*\)")


def concrete(route: str, world: dict) -> str:
    """The route with a real id in place of each placeholder."""

    def value(match: re.Match) -> str:
        name = match["name"] or match["group"]
        if name == "pk":
            return str(world["pks"][route.split("/")[0]])
        assert name in world["values"], f"{route}: no value for <{name}> in this test"
        return str(world["values"][name])

    return PLACEHOLDER.sub(value, route)


def test_every_api_route_answers_the_same_with_a_trailing_slash(world):
    api, routes = world["api"], api_routes()
    assert len(routes) >= 40  # the walk found the API
    for route in routes:
        path = f"/api/v1/{concrete(route, world)}"
        assert not path.endswith("/"), route
        for method in ("get", "options"):
            plain, slashed = getattr(api, method)(path), getattr(api, method)(path + "/")
            where = f"{method.upper()} {path}/"
            assert slashed.status_code == plain.status_code, (where, slashed.content[:200])
            assert slashed.content == plain.content, where
            if method == "options":  # every API view answers it: the route was found
                assert plain.status_code == 200, (where, plain.content[:200])


def test_a_write_through_the_slashed_path_is_the_same_write(world):
    api = world["api"]
    first = api.post("/api/v1/customers/", {"email": "b@x.io"}, format="json",
                     headers={"Idempotency-Key": "k1"})  # fmt: skip
    assert first.status_code == 201, first.content
    # A retry through the other spelling of the path is the same request, replayed.
    again = api.post("/api/v1/customers", {"email": "b@x.io"}, format="json",
                     headers={"Idempotency-Key": "k1"})  # fmt: skip
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Customer.objects.filter(email="b@x.io").count() == 1
    order = world["pks"]["orders"]
    assert api.delete(f"/api/v1/orders/{order}/").status_code == 204
    assert not Order.objects.filter(pk=order).exists()


def test_the_schema_lists_each_path_once_as_written(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    assert "/api/v1/customers" in paths and "/api/v1/customers/{ref}" in paths
    assert not [p for p in paths if p.endswith("/")]


def test_pages_outside_the_api_keep_their_own_paths(client):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/healthz/").status_code == 404
    assert client.get("/api/v1/").status_code == 404
