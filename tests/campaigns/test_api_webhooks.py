"""campaigns.api: webhook endpoints over the API, whose signing secret is write-only (an outside
tester's find: a campaigns:read key read every endpoint's secret and could sign forged
deliveries)."""

import pytest

from campaigns.models import WebhookEndpoint
from tests.campaigns.factories import client_for
from tests.campaigns.helpers import PUBLIC

pytestmark = pytest.mark.django_db


def test_the_secret_is_shown_once_by_the_request_that_set_it(workspace, dns):
    dns["crm.example.com"] = [PUBLIC]
    writer = client_for(workspace)
    reader = client_for(workspace, ["campaigns:read"])
    made = writer.post("/api/v1/webhooks", {"url": "https://crm.example.com/hook"})
    assert made.status_code == 201
    hook, secret = made.json()["id"], made.json()["secret"]
    assert len(secret) == 40 and WebhookEndpoint.objects.get().secret == secret
    chosen = writer.post(
        "/api/v1/webhooks", {"url": "https://crm.example.com/b", "secret": "s" * 20}
    )
    assert chosen.status_code == 201 and chosen.json()["secret"] == "s" * 20

    for api in (reader, writer):
        listed = api.get("/api/v1/webhooks")
        assert listed.status_code == 200
        rows = listed.json()["results"]  # paginated like the other lists
        assert {row["id"] for row in rows} == {hook, chosen.json()["id"]}
        assert all("secret" not in row for row in rows)
        one = api.get(f"/api/v1/webhooks/{hook}")
        assert one.status_code == 200 and "secret" not in one.json()
        assert secret.encode() not in listed.content + one.content

    # A PATCH that changes something else does not show it; one that sets a new secret does.
    quiet = writer.patch(f"/api/v1/webhooks/{hook}", {"active": False})
    assert quiet.status_code == 200 and "secret" not in quiet.json()
    assert quiet.json()["active"] is False
    rotated = writer.patch(f"/api/v1/webhooks/{hook}", {"secret": "n" * 32})
    assert rotated.status_code == 200 and rotated.json()["secret"] == "n" * 32
    assert WebhookEndpoint.objects.get(pk=hook).secret == "n" * 32
    assert "secret" not in reader.get(f"/api/v1/webhooks/{hook}").json()
    # A read key cannot set one either.
    assert reader.patch(f"/api/v1/webhooks/{hook}", {"secret": "r" * 32}).status_code == 403


def test_the_webhook_list_is_paginated(workspace):
    WebhookEndpoint.objects.bulk_create(
        WebhookEndpoint(workspace=workspace, url=f"https://crm.example.com/{i}", secret="s" * 40)
        for i in range(3)
    )
    api = client_for(workspace, ["campaigns:read"])
    first = api.get("/api/v1/webhooks?limit=2").json()
    assert len(first["results"]) == 2 and first["next"]
    rest = api.get(first["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    seen = [row["url"] for row in first["results"] + rest["results"]]
    assert sorted(seen) == [f"https://crm.example.com/{i}" for i in range(3)]


def test_the_schema_says_the_secret_is_write_only(client):
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    endpoint = components["WebhookEndpoint"]["properties"]["secret"]
    assert endpoint.get("writeOnly") is True
    created = schema["paths"]["/api/v1/webhooks"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert ref == "WebhookEndpointWithSecret"
    assert components[ref]["properties"]["secret"].get("readOnly") is True
    listed = schema["paths"]["/api/v1/webhooks"]["get"]["responses"]["200"]
    ref = listed["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "results" in components[ref]["properties"]  # the paginated envelope
    assert schema["paths"]["/api/v1/webhooks"]["get"]["operationId"] == "v1_webhooks_list"
    assert schema["paths"]["/api/v1/webhooks/{id}"]["get"]["operationId"] == "v1_webhooks_retrieve"
