"""marketing_ai.nul: a NUL in a path, a query value or a public page's JSON body answers 400
naming where, on every page; on PostgreSQL these reached a query and answered 500."""

import json

import pytest

from crm.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def space(db):
    return Workspace.objects.create(slug="acme", name="Acme")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/chat/acme/messages?conversation=a%00b", "conversation"),
        ("/chat/acme/messages?conversation=x&after=1%00", "after"),
        ("/chat/acme/?c=a%00b", "c"),
        ("/u/a%00b", "path"),
        ("/preferences/a%00b", "path"),
        ("/t/c/a%00b", "path"),
    ],
)
def test_nul_in_a_path_or_query_is_400(client, space, url, field):
    response = client.get(url)
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hi\x00"},
        {"message": "hi", "conversation": "\x00"},
        {"message": "hi", "identity": "a\x00"},
    ],
)
def test_nul_in_a_public_json_body_is_400(client, space, body):
    response = client.post("/chat/acme/messages", json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and "body" in response.json()["errors"]


def test_the_api_checks_its_own_bodies_per_row(client, space):
    """/api/ bodies pass through: a bulk batch keeps its good rows (crm.validation)."""
    from crm import services

    _, secret = services.api_key_create(workspace=space, name="t", scopes=["crm:write"])
    rows = [{"email": "a@x.io"}, {"email": "b@x.io", "first_name": "\x00"}]
    response = client.post(
        "/api/v1/customers/bulk",
        json.dumps(rows),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200 and response.json()["created"] == 1


def test_ordinary_pages_are_untouched(client, space):
    assert client.get("/chat/acme/").status_code == 200
