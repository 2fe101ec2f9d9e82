"""Every API route answers only its own methods, in the views, over HTTP and in the schema.

A sub-resource view that subclassed its parent's view inherited the parent's handlers:
DELETE /webhooks/<id>/deliveries answered 204 and deleted the webhook endpoint, and
/variants/<id>/approve took GET, PATCH and DELETE of the variant; the OpenAPI schema advertised
them. The routes are read from the URL configuration, so a route added later fails here until
its methods are written in the table.
"""

import re

import pytest

from campaigns.models import Variant, WebhookEndpoint
from tests.api_routes import api_views, concrete

pytestmark = pytest.mark.django_db

# What each route answers (besides OPTIONS, and HEAD wherever GET is), as the API documents it.
EXPECTED = {
    "tasks/<uuid:run_id>": {"GET"},
    "customers": {"GET", "POST"},
    "customers/bulk": {"POST"},
    "customers/(?P<ref>[^/]+)/timeline": {"GET"},
    "customers/(?P<ref>[^/]+)/recommendations": {"GET"},
    "customers/(?P<ref>[^/]+)": {"GET", "PATCH", "PUT", "DELETE"},
    "products": {"GET", "POST"},
    "products/bulk": {"POST"},
    "products/<int:pk>": {"GET", "PATCH", "PUT", "DELETE"},
    "orders": {"GET", "POST"},
    "orders/bulk": {"POST"},
    "orders/<int:pk>": {"GET", "PATCH", "PUT", "DELETE"},
    "events": {"GET", "POST"},
    "events/bulk": {"POST"},
    "events/<int:pk>": {"GET", "DELETE"},
    "segments": {"GET", "POST"},
    "segments/preview": {"POST"},
    "segments/<int:pk>": {"GET", "PATCH", "PUT", "DELETE"},
    "segments/<int:pk>/count": {"GET"},
    "segments/<int:pk>/preview": {"GET"},
    "segments/<int:pk>/members": {"GET", "POST"},
    "segments/<int:pk>/refresh": {"POST"},
    "forecasts": {"GET"},
    "privacy/export": {"POST"},
    "privacy/erase": {"POST"},
    "chat": {"POST"},
    "chat/conversations/<int:pk>": {"GET"},
    "chat/<str:token>": {"GET"},
    "campaigns": {"GET", "POST"},
    "campaigns/<int:pk>": {"GET", "PATCH", "DELETE"},
    "campaigns/<int:pk>/launch": {"POST"},
    "campaigns/<int:pk>/pause": {"POST"},
    "campaigns/<int:pk>/resume": {"POST"},
    "campaigns/<int:pk>/cancel": {"POST"},
    "campaigns/<int:pk>/resend-failed": {"POST"},
    "campaigns/<int:pk>/stats": {"GET"},
    "campaigns/<int:pk>/messages": {"GET"},
    "campaigns/<int:pk>/policy-evaluation": {"GET"},
    "campaigns/<int:pk>/variants": {"GET", "POST"},
    "campaigns/<int:pk>/variants/<int:variant_pk>": {"GET", "PATCH", "DELETE"},
    "campaigns/<int:pk>/variants/<int:variant_pk>/approve": {"POST"},
    "content/generate": {"POST"},
    "content/rising-products": {"GET"},
    "webhooks": {"GET", "POST"},
    "webhooks/<int:pk>": {"GET", "PATCH", "DELETE"},
    "webhooks/<int:pk>/deliveries": {"GET"},
    "journeys": {"GET", "POST"},
    "journeys/<int:pk>": {"GET", "PATCH", "DELETE"},
    "journeys/templates/<str:name>": {"POST"},
    "journeys/<int:pk>/publish": {"POST"},
    "journeys/<int:pk>/pause": {"POST"},
    "journeys/<int:pk>/resume": {"POST"},
    "journeys/<int:pk>/stop": {"POST"},
    "journeys/<int:pk>/move": {"POST"},
    "journeys/<int:pk>/stats": {"GET"},
    "journeys/<int:pk>/enrolments": {"GET", "POST"},
    "journeys/<int:pk>/enrolments/<int:enrolment_pk>/exit": {"POST"},
    "customers/(?P<ref>[^/]+)/journeys": {"GET"},
}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
PLACEHOLDER = re.compile(r"<(?:\w+:)?\w+>|\(\?P<\w+>[^)]*\)|\{\w+\}")


def handled(view: type) -> set[str]:
    return {m.upper() for m in view.http_method_names if hasattr(view, m)} & METHODS


def shape(route: str) -> str:
    """'campaigns/<int:pk>/variants' and '/api/v1/campaigns/{id}/variants' both as
    'campaigns/{}/variants'."""
    return PLACEHOLDER.sub("{}", route.removeprefix("/api/v1/"))


def test_every_route_is_in_the_table():
    assert set(api_views()) == set(EXPECTED)


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_each_view_handles_exactly_its_own_methods(route):
    assert handled(api_views()[route]) == EXPECTED[route]


def test_the_schema_lists_only_those_methods(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    listed = {shape(p): {m.upper() for m in ops} & METHODS for p, ops in paths.items()}
    assert listed == {shape(route): methods for route, methods in EXPECTED.items()}


def test_any_other_method_answers_405_and_changes_nothing(world):
    api = world["api"]
    webhook, variant = world["pks"]["webhooks"], world["values"]["variant_pk"]
    for route, methods in EXPECTED.items():
        path = f"/api/v1/{concrete(route, world)}"
        for method in sorted(METHODS - methods):
            response = getattr(api, method.lower())(path, {}, format="json")
            assert response.status_code == 405, (method, path, response.content[:200])
            assert set(response["Allow"].replace(" ", "").split(",")) - {"OPTIONS", "HEAD"} == (
                methods
            ), (method, path)
    # The outside tester's two: the endpoint and the variant are still there.
    assert WebhookEndpoint.objects.filter(pk=webhook).exists()
    assert Variant.objects.filter(pk=variant).exists()


def test_no_method_the_schema_lists_answers_405(client, world):
    """The schema says what the API does: a method it lists for a path is one the path takes
    (events once listed PUT and PATCH, which always answered 405)."""
    paths = client.get("/api/schema/?format=json").json()["paths"]
    routes = {shape(route): route for route in EXPECTED}
    calls = [
        (routes[shape(path)], method.upper())
        for path, operations in paths.items()
        for method in operations
        if method.upper() in METHODS
    ]
    # Deletes last, so every other method meets the rows it acts on.
    for route, method in sorted(calls, key=lambda call: call[1] == "DELETE"):
        path = f"/api/v1/{concrete(route, world)}"
        response = getattr(world["api"], method.lower())(path, {}, format="json")
        assert response.status_code != 405, (method, path, response.content[:200])


def test_editing_an_event_says_events_are_append_only(world):
    path = f"/api/v1/events/{world['pks']['events']}"
    for method in ("put", "patch"):
        response = getattr(world["api"], method)(path, {"type": "x"}, format="json")
        assert response.status_code == 405
        assert "append-only" in response.json()["detail"]
        assert set(response["Allow"].replace(" ", "").split(",")) - {"OPTIONS", "HEAD"} == {
            "GET",
            "DELETE",
        }
