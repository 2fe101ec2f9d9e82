"""Every API route answers the same with a trailing slash as without one (marketing_ai.slash).

The routes are read from the URL configuration, so a route added later is covered too; each is
asked with real ids of one workspace's objects, so most answers are the objects themselves.
"""

import pytest

from crm.models import (
    Customer,
    Order,
)
from tests.api_routes import api_routes, concrete

pytestmark = pytest.mark.django_db


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
    first = api.post(
        "/api/v1/customers/", {"email": "b@x.io"}, format="json", headers={"Idempotency-Key": "k1"}
    )
    assert first.status_code == 201, first.content
    # A retry through the other spelling of the path is the same request, replayed.
    again = api.post(
        "/api/v1/customers", {"email": "b@x.io"}, format="json", headers={"Idempotency-Key": "k1"}
    )
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
