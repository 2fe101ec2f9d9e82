"""Products forecast to rise offered to copy briefs: the admin's generation form and the API
offer the active forecast's rising products with their change and band; those chosen go into
the brief the language model gets, and the run keeps the forecast they were chosen from."""

import pytest

from campaigns.services import copy
from crm.models import Product
from marketing_ai.ml.language import copywriter
from tests.campaigns.test_copy import api_for, setup_shop
from tests.crm.factories import WorkspaceFactory
from tests.crm.forecast_rows import forecast_version
from workers.models import ModelVersion, TaskRun

pytestmark = pytest.mark.django_db
HEART = "WHITE HANGING HEART T-LIGHT HOLDER"
RISING = "/api/v1/content/rising-products"


@pytest.fixture
def campaign(workspace):
    campaign = setup_shop(workspace)
    Product.objects.create(workspace=workspace, sku="OLD", name="RETIRED LAMP", active=False)
    Product.objects.create(workspace=workspace, sku="NEW", name="PAPER KITE")
    # The heart rises for sure, the teacup's band straddles zero (steady), the retired lamp
    # rises but is off the catalogue, "(other)" has no product row; the kite sold a fifth of
    # one a week lately, so its +4,000% is shown as new.
    forecast_version(
        workspace,
        {
            "NEW": (40.0, 10.0, 60.0, 0.2),
            "HEART": (0.3, 0.1, 0.5),
            "TEA": (0.2, -0.1, 0.5),
            "OLD": (0.9, 0.5, 1.2),
            "(other)": (0.4, 0.2, 0.6),
        },
    )
    return campaign


def runs():
    return TaskRun.objects.filter(kind=copy.GENERATE_COPY).order_by("created_at")


def test_the_admin_offers_rising_products_and_puts_the_chosen_in_the_brief(
    workspace, campaign, client, admin_user
):
    workspace.members.add(admin_user)
    client.force_login(admin_user)
    url = f"/admin/campaigns/campaign/{campaign.pk}/generate/"
    page = client.get(url).content.decode()
    assert "Forecast to rise" in page
    assert f"{HEART}: +30% (80% band +10% to +50%)" in page
    assert "PAPER KITE: new (next to nothing sold lately, 8 a week ahead)" in page
    assert "ROSES REGENCY" not in page and "RETIRED LAMP" not in page and "(other)" not in page
    form = {"products": "", "goal": "Tea time", "language": "en", "k": 2}
    assert "between 1 and 5 products" in client.post(url, form).content.decode()
    not_offered = client.post(url, {**form, "rising": ["TEA"]}).content.decode()
    assert "Select a valid choice" in not_offered and not runs().exists()
    assert client.post(url, {**form, "rising": ["HEART"]}).status_code == 302
    (run,) = runs()
    assert run.params["products"] == ["HEART"] and run.params["rising"] == []
    (chosen,) = run.params["brief_rising"]
    assert chosen["sku"] == "HEART" and chosen["change"] == 0.3
    assert (chosen["change_lower"], chosen["change_upper"]) == (0.1, 0.5)
    # The brief the worker builds from the run: the product, as plain data, in the prompt.
    brief = copy.copy_brief(campaign=campaign, params=run.params)
    assert [p.name for p in brief.products] == [HEART]
    assert "White Hanging Heart T-Light Holder" in copywriter.prompt(brief, "body")[1]["content"]
    # With products typed as well, the brief has both (5 at most in all).
    assert client.post(url, {**form, "products": "TEA", "rising": ["HEART"]}).status_code == 302
    both = copy.copy_brief(campaign=campaign, params=runs().last().params)
    assert {p.name for p in both.products} == {HEART, "ROSES REGENCY TEACUP AND SAUCER"}


def test_no_forecast_no_offer(workspace, client, admin_user):
    campaign = setup_shop(workspace)
    workspace.members.add(admin_user)
    client.force_login(admin_user)
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/generate/").content.decode()
    assert "Forecast to rise" not in page
    assert "no product is forecast to rise now" in page  # says why nothing is offered
    assert api_for(workspace).get("/api/v1/content/rising-products").json() == {"results": []}


def test_the_api_offers_and_takes_them(workspace, campaign):
    other_workspace = WorkspaceFactory(slug="other", name="Other")
    api = api_for(workspace)
    offer = api.get("/api/v1/content/rising-products")
    assert offer.status_code == 200
    kite, heart = offer.json()["results"]  # fastest first
    assert (kite["sku"], kite["change"], kite["recent"]) == ("NEW", 40.0, 0.2)
    assert heart["sku"] == "HEART" and heart["name"] == HEART
    assert heart["forecast_version"] == ModelVersion.objects.get(workspace=workspace).pk
    assert [p["sku"] for p in api.get(f"{RISING}?limit=1").json()["results"]] == ["NEW"]
    assert api.get(f"{RISING}?limit=0").status_code == 400
    # Another workspace's key sees its own (empty) offer, not this one.
    assert api_for(other_workspace).get("/api/v1/content/rising-products").json()["results"] == []
    body = {"campaign": campaign.pk, "rising": ["HEART"], "k": 2}
    started = api.post("/api/v1/content/generate", body, format="json")
    assert started.status_code == 202, started.content
    run = TaskRun.objects.get(pk=started.json()["task"])
    assert run.params["products"] == ["HEART"] and run.params["brief_rising"][0]["sku"] == "HEART"
    steady = api.post("/api/v1/content/generate", {**body, "rising": ["TEA"]}, format="json")
    assert steady.status_code == 400 and "TEA" in steady.json()["rising"][0]
    nothing = api.post("/api/v1/content/generate", {"campaign": campaign.pk}, format="json")
    assert nothing.status_code == 400 and "between 1 and 5" in nothing.json()["products"][0]
    # Six in all with the rising one (SKUs no product has: ids such as "1" may name TEA itself).
    six = {**body, "products": ["TEA", "NO-1", "NO-2", "NO-3", "NO-4"]}
    too_many = api.post("/api/v1/content/generate", six, format="json")
    assert too_many.status_code == 400 and "between 1 and 5" in too_many.json()["products"][0]
    assert runs().count() == 1
