"""Staff input the admin must answer without a 500: the customer admin holds attributes to the
API's rules (crm.validation.json_object), else staff could store what the API refuses and every
customer list and export would then answer 500; the segment builder's live count and the
workspace switcher take ids as crm.validation.identifier does ("²".isdigit() is True)."""

import json

import pytest
from django.contrib import admin
from django.forms.models import model_to_dict

from crm.models import Customer

pytestmark = pytest.mark.django_db


def deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("attributes", "saved"),
    [({"tier": "gold"}, True), (deep(260), False), ({"k": "a\x00b"}, False), ({"n": 2**63}, False)],
    ids=["plain", "260 levels", "NUL", "beyond 64 bits"],
)
def test_customer_form_refuses_what_the_api_refuses(workspace, admin_user, rf, attributes, saved):
    customer = Customer.objects.create(workspace=workspace, email="a@x.io")
    request = rf.get("/")
    request.user, request.session = admin_user, {}
    form_class = admin.site._registry[Customer].get_form(request, customer)
    data = {k: v for k, v in model_to_dict(customer).items() if v is not None}
    data["attributes"] = json.dumps(attributes)
    form = form_class(data=data, instance=customer)
    assert form.is_valid() is saved, form.errors
    if not saved:
        assert "attributes" in form.errors


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"workspace": "²", "rules": {}}).encode(),
        json.dumps({"workspace": "abc"}).encode(),
        json.dumps({"workspace": [1]}).encode(),
        json.dumps({"workspace": {}}).encode(),
        json.dumps({"workspace": 2**70}).encode(),
        json.dumps([{"workspace": 1}]).encode(),
        b'{"workspace": "\xff\xfe"}',  # not UTF-8
        b"[" * 100_000,  # deeper than json.loads recurses
    ],
    ids=[
        "superscript two",
        "letters",
        "a list",
        "an object",
        "beyond bigint",
        "a list body",
        "invalid UTF-8",
        "nested too deep",
    ],
)
def test_segment_live_count_answers_400_for_a_bad_body(admin_client, workspace, body):
    response = admin_client.post("/admin/crm/segment/live/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]


@pytest.mark.parametrize("value", ["abc", "²", "١٢", "-1", str(2**70)])
def test_workspace_switch_refuses_what_is_not_an_id(admin_client, workspace, value):
    admin_client.post("/admin/crm/workspace/switch/", {"workspace": workspace.pk})
    response = admin_client.post("/admin/crm/workspace/switch/", {"workspace": value}, follow=True)
    assert response.status_code == 200
    assert "That is not a workspace." in response.content.decode()
    assert admin_client.session["crm_workspace"] == workspace.pk  # the choice stays
