"""The customer admin holds attributes to the API's rules (crm.validation.json_object): staff
could store what the API refuses, and every customer list and export would then answer 500."""

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
