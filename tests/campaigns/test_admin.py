"""The campaign admin (campaigns/admin/campaigns.py) with the logged-in Django test client: odd
values staff can type into its pages answer a page or a message, never a 500."""

import pytest

from tests.campaigns.factories import make_audience, make_campaign

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who", ["²", "١٢", "-1", str(2**70), "nobody@example.com", "abc"])
def test_preview_takes_any_customer_value(admin_client, workspace, who):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    response = admin_client.get(
        f"/admin/campaigns/campaign/{campaign.pk}/preview/", {"customer": who}
    )
    assert response.status_code == 200
    assert response.context["customer"] is None  # none of these names a customer


def test_preview_finds_a_customer_by_id_or_address(admin_client, workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 2))
    customer = workspace.customers.order_by("pk").last()
    url = f"/admin/campaigns/campaign/{campaign.pk}/preview/"
    for who in (str(customer.pk), customer.email.upper()):
        page = admin_client.get(url, {"customer": who}).content.decode()
        assert f"Hello {customer.first_name}" in page, who  # the variant rendered for them


@pytest.mark.parametrize("object_id", ["abc", "²", str(2**70)])
def test_a_change_page_for_a_bad_id_is_the_admins_not_found(admin_client, object_id):
    response = admin_client.get(f"/admin/campaigns/campaign/{object_id}/change/")
    assert response.status_code == 302  # the admin's "does not exist" redirect, not a 500


@pytest.mark.parametrize(
    ("field", "value", "saved"),
    [
        ("from_email", "Shop <news@shop.example>", True),
        ("from_email", "not an email", False),
        ("from_email", "a@b.c\r\nBcc: x@y.z", False),
        ("ab_wait_hours", "720", True),
        ("ab_wait_hours", "721", False),
        ("ab_wait_hours", "1e308", False),
    ],
)
def test_campaign_form_holds_sender_and_ab_wait_to_the_apis_rules(
    workspace, admin_user, rf, field, value, saved
):
    from django.contrib import admin

    from campaigns.models import Campaign

    request = rf.get("/")
    request.user, request.session = admin_user, {}
    form_class = admin.site._registry[Campaign].get_form(request)
    data = {
        "workspace": workspace.pk,
        "name": "c",
        "channel": "email",
        "consent_rule": "opt_in",
        "timing": "now",
        "frequency_days": 7,
        "attribution_days": 5,
        "holdout_percent": 0,
        "goal_event": "purchase",
        "ab_metric": "click",
        "ab_wait_hours": 4,
        "targeting": "everyone",
        "targeting_control_percent": 10,
        field: value,
    }
    form = form_class(data=data)
    assert form.is_valid() is saved, form.errors
    if not saved:
        assert set(form.errors) == {field}
