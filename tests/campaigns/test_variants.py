"""campaigns.services.variants: approval compiles and renders a variant (a template error is
refused and the variant stays a draft), and the one rule for taking an approval back after an
edit (the admin's inline and the API's PATCH both use it); a launched campaign's copy is
frozen."""

import pytest
from django.contrib.auth.models import User

from campaigns.models import Campaign, Variant
from campaigns.services import lifecycle, variants
from tests.campaigns.factories import client_for, make_audience, make_campaign

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sends_in_this_process")
def test_approval_catches_template_errors(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    bad = Variant.objects.create(
        campaign=campaign, name="bad", subject="x", body_html="<p>{% if %}</p>"
    )
    with pytest.raises(lifecycle.CampaignError) as error:
        variants.variant_approve(variant=bad)
    assert "body_html" in error.value.errors
    bad.refresh_from_db()
    assert bad.status == Variant.Status.DRAFT


# --- re-approval after an edit ---------------------------------------------------------------


def admin_for(workspace, client):
    staff = User.objects.create_superuser("boss", password="a-long-password-2")
    workspace.members.add(staff)
    client.force_login(staff)

    def edit(campaign: Campaign, variant: Variant, **changes) -> None:
        """Saves the campaign's change form as the page posts it, with `changes` to the variant."""
        url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
        page = client.get(url)
        forms = [page.context["adminform"].form]
        for inline in page.context["inline_admin_formsets"]:
            forms += [inline.formset.management_form, *inline.formset.forms]
        data = {}
        for form in forms:
            for name in form.fields:
                value = form[name].value()
                if value is not None and value is not False:
                    data[form.add_prefix(name)] = value
        (prefix,) = {f.prefix for f in forms[2:] if f.instance.pk == variant.pk}
        data.update({f"{prefix}-{name}": value for name, value in changes.items()})
        answer = client.post(url, data)
        assert answer.status_code == 302, answer.context and answer.context["errors"]

    return edit


def api_edit(workspace):
    api = client_for(workspace, ["campaigns:write"])

    def edit(campaign: Campaign, variant: Variant, **changes) -> None:
        answer = api.patch(f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}", changes)
        assert answer.status_code == 200, answer.content

    return edit


@pytest.fixture(params=["admin", "api"])
def edit(request, workspace, client):
    return admin_for(workspace, client) if request.param == "admin" else api_edit(workspace)


def approved(variant: Variant) -> bool:
    variant.refresh_from_db()
    return variant.status == Variant.Status.APPROVED and variant.approved_at is not None


def test_an_edit_of_the_copy_takes_the_approval_back_in_the_admin_and_the_api(workspace, edit):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    variant = campaign.variants.get()
    assert approved(variant)
    edit(campaign, variant, weight=3, name="Renamed")  # no copy changed: still approved
    assert approved(variant) and (variant.weight, variant.name) == (3, "Renamed")
    edit(campaign, variant, subject="Now 90% off")
    variant.refresh_from_db()
    assert variant.subject == "Now 90% off" and not approved(variant)
    assert variant.status == Variant.Status.DRAFT and variant.approved_by is None


def test_an_edit_with_the_same_copy_keeps_the_approval(workspace, edit):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    variant = campaign.variants.get()
    edit(campaign, variant, subject=variant.subject, body_html=variant.body_html)
    assert approved(variant)


def test_a_launched_campaigns_copy_is_frozen(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    variant = campaign.variants.get()
    with pytest.raises(lifecycle.CampaignError) as refused:
        variants.variant_update(variant=variant, fields={"subject": "changed"})
    assert "frozen" in str(refused.value.errors["status"])
    answer = client_for(workspace, ["campaigns:write"]).patch(
        f"/api/v1/campaigns/{campaign.pk}/variants/{variant.pk}", {"subject": "changed"}
    )
    assert answer.status_code == 400 and "status" in answer.json()
    variant.refresh_from_db()
    assert variant.subject != "changed" and approved(variant)
