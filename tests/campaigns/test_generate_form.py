"""campaigns.admin.generate: the generate-variants form drawn as the admin draws its forms, with
a product picker searching the campaign's own workspace's catalogue (never another's, even for
staff who belong to both), and the picked SKUs going into the brief as they are."""

import pytest
from django.contrib.auth.models import Permission

from campaigns.models import Campaign
from campaigns.services import copy
from crm import services
from crm.models import Product
from tests.campaigns.test_copy import setup_shop
from tests.crm.factories import WorkspaceFactory
from workers.models import TaskRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(workspace, client, admin_user):
    campaign = setup_shop(workspace)  # TEA (a teacup and saucer) and HEART
    other = WorkspaceFactory(slug="other", name="Other shop")
    services.product_bulk_upsert(
        workspace=other, rows=[{"sku": "TEA-OTHER", "name": "ANOTHER SHOP'S TEACUP"}]
    )
    for member_of in (workspace, other):  # staff of both: the picker still shows one
        member_of.members.add(admin_user)
    client.force_login(admin_user)
    page = f"/admin/campaigns/campaign/{campaign.pk}/generate/"
    return {"campaign": campaign, "other": other, "client": client, "page": page}


def search(shop, **query):
    return shop["client"].get(shop["page"] + "products/", query)


def test_the_form_is_laid_out_as_the_admins_own(shop):
    html = shop["client"].get(shop["page"]).content.decode()
    assert 'href="/static/admin/css/forms.css"' in html
    assert '<fieldset class="module aligned' in html and 'class="form-row field-products' in html
    assert '<label class="required" for="id_goal">' in html
    # The picker: the admin's select2 autocomplete, asking this campaign's search address.
    assert 'class="admin-autocomplete"' in html
    assert f'data-ajax--url="{shop["page"]}products/"' in html
    assert "admin/js/vendor/select2/select2.full" in html and "admin/js/autocomplete.js" in html
    assert "comma separated" not in html


def test_the_search_finds_the_campaigns_workspace_products_only(shop):
    answer = search(shop, term="tea")
    assert answer.status_code == 200
    assert answer.json() == {
        "results": [{"id": "TEA", "text": "TEA — ROSES REGENCY TEACUP AND SAUCER"}],
        "pagination": {"more": False},
    }
    assert [r["id"] for r in search(shop, term="teacup").json()["results"]] == ["TEA"]
    assert {r["id"] for r in search(shop).json()["results"]} == {"TEA", "HEART"}
    # The other workspace's campaign answers with its own products, not these.
    theirs = Campaign.objects.create(workspace=shop["other"], name="Theirs")
    url = f"/admin/campaigns/campaign/{theirs.pk}/generate/products/"
    ids = [r["id"] for r in shop["client"].get(url, {"term": "tea"}).json()["results"]]
    assert ids == ["TEA-OTHER"]


def test_a_workspace_not_ones_own_is_not_searched(shop, django_user_model, client):
    outsider = django_user_model.objects.create_user("outsider", password="pw", is_staff=True)
    outsider.user_permissions.set(
        Permission.objects.filter(codename__in=["view_campaign", "change_campaign"])
    )
    shop["other"].members.add(outsider)
    client.force_login(outsider)
    answer = client.get(shop["page"] + "products/", {"term": "tea"})
    assert answer.status_code == 404
    theirs = Campaign.objects.create(workspace=shop["other"], name="Theirs")
    own = client.get(f"/admin/campaigns/campaign/{theirs.pk}/generate/products/")
    assert [r["id"] for r in own.json()["results"]] == ["TEA-OTHER"]


def test_inactive_products_are_not_offered_and_pages_follow(shop):
    workspace = shop["campaign"].workspace
    Product.objects.filter(workspace=workspace, sku="HEART").update(active=False)
    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": f"MUG{i:02}", "name": f"MUG {i:02}"} for i in range(25)]
    )
    first = search(shop, term="mug").json()
    assert len(first["results"]) == 20 and first["pagination"]["more"] is True
    second = search(shop, term="MUG", page="2").json()
    assert len(second["results"]) == 5 and second["pagination"]["more"] is False
    assert {r["id"] for r in first["results"] + second["results"]} == {
        f"MUG{i:02}" for i in range(25)
    }
    assert "HEART" not in {r["id"] for r in search(shop, term="heart").json()["results"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [({"page": "abc"}, "page"), ({"page": "0"}, "page"), ({"page": "²"}, "page"),
     ({"page": "9" * 30}, "page"), ({"term": "x" * 101}, "term")],
)  # fmt: skip
def test_odd_searches_are_400_with_the_fields_message(shop, query, field):
    answer = search(shop, **query)
    assert answer.status_code == 400 and field in answer.json()["errors"]


def test_the_search_only_reads(shop):
    assert shop["client"].post(shop["page"] + "products/", {"term": "tea"}).status_code == 405


def test_the_picked_products_go_into_the_brief(shop):
    form = {"products": ["TEA", "HEART"], "goal": "Tea time", "language": "en", "k": 2}
    assert shop["client"].post(shop["page"], form).status_code == 302
    run = TaskRun.objects.get(kind=copy.GENERATE_COPY)
    assert run.params["products"] == ["TEA", "HEART"]
    # A product of the other workspace is not in this catalogue: the form says so, and shows
    # what was picked, named where it is this workspace's.
    refused = shop["client"].post(shop["page"], {**form, "products": ["TEA", "TEA-OTHER"]})
    html = refused.content.decode()
    assert refused.status_code == 200 and "not in the catalogue" in html and "TEA-OTHER" in html
    assert '<option value="TEA" selected>TEA — ROSES REGENCY TEACUP AND SAUCER</option>' in html
    assert TaskRun.objects.filter(kind=copy.GENERATE_COPY).count() == 1
