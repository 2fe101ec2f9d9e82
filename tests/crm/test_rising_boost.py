"""The recommendation boost for products forecast to rise (crm.selectors.rising_boost): the
arithmetic, then served lists on real rows (a customer's own list and the popular picks) through
the selector, the API (workspace setting, request override, cache) and the customer's page."""

from datetime import UTC, datetime

import pytest

from crm import services
from crm.api.auth import key_cache
from crm.models import Customer, Recommendation
from crm.selectors import recommendations_for
from crm.selectors.rising_boost import MAX_LIFT, boosted, multiplier, rank_scores
from tests.crm.factories import client_for
from tests.crm.forecast_rows import forecast_version
from workers.models import ModelVersion

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_the_lift_is_capped_and_only_moves_rising_products_up():
    assert multiplier(0.3, 0.5) == pytest.approx(1.15)
    assert multiplier(10.0, 0.5) == 1 + MAX_LIFT
    assert multiplier(-0.4, 0.5) == 1.0
    ranked = [(1, 1.0), (2, 0.9), (3, 0.8), (4, -0.2), (5, -0.3)]
    assert boosted(ranked, {3: 0.3}, 0.5) == ([1, 3, 2, 4, 5], {3})
    assert boosted(ranked, {3: 0.3}, 0.0) == ([1, 2, 3, 4, 5], set())
    assert boosted(ranked, {2: -0.5}, 1.0) == ([1, 2, 3, 4, 5], set())
    # A negative score is divided: -0.36 / 1.5 (capped; x10 uncapped) = -0.24 stays below -0.2.
    assert boosted([(4, -0.2), (5, -0.36)], {5: 9.0}, 1.0) == ([4, 5], {5})
    assert boosted([(4, 0.5), (5, 0.5), (6, 0.4)], {6: 0.1}, 1.0)[0] == [4, 5, 6]  # ties: as given
    assert boosted([(4, -0.25), (5, -0.3)], {5: 9.0}, 1.0)[0] == [5, 4]
    assert rank_scores([7, 8, 9]) == [(7, 3.0), (8, 2.0), (9, 1.0)]


@pytest.fixture
def shop(workspace):
    skus = [f"P{i}" for i in range(1, 9)]
    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": s, "name": f"Product {s}", "price": 5} for s in skus]
    )
    ids = dict(workspace.products.values_list("sku", "pk"))
    recommender = ModelVersion.objects.create(
        workspace=workspace,
        family="recommend.ease",
        version=1,
        status=ModelVersion.Status.ACTIVE,
        params={"popular": [ids[s] for s in ("P1", "P2", "P6", "P4", "P7", "P8")]},
    )
    ann = Customer.objects.create(workspace=workspace, email="ann@acme.io")
    Recommendation.objects.create(
        workspace=workspace,
        customer=ann,
        model_version=recommender,
        computed_at=NOW,
        products=[[ids["P1"], 1.0], [ids["P2"], 0.9], [ids["P3"], 0.8], [ids["P4"], 0.5]],
    )
    newcomer = Customer.objects.create(workspace=workspace, email="new@acme.io")
    # P3 rises by 30%, P4 by 1000% (capped), P2's band straddles zero: steady, not lifted.
    version = forecast_version(
        workspace,
        {"P2": (0.5, -0.1, 1.1), "P3": (0.3, 0.1, 0.5), "P4": (10.0, 5.0, 15.0)},
    )
    return {"ids": ids, "ann": ann, "newcomer": newcomer, "forecast": version}


def skus(answer: dict) -> list[str]:
    return [row["sku"] for row in answer["results"]]


@pytest.mark.django_db
def test_a_customers_list_is_lifted_by_the_workspace_setting(workspace, shop):
    ann, ids = shop["ann"], shop["ids"]
    plain = recommendations_for(customer=ann, limit=4)
    assert skus(plain) == ["P1", "P2", "P3", "P4"] and "boost" not in plain  # off by default
    workspace.rising_boost = 0.5
    workspace.save()
    ann = Customer.objects.get(pk=ann.pk)
    lifted = recommendations_for(customer=ann, limit=4)
    # P3: 0.8 x 1.15 = 0.92 passes P2's 0.9; P4: 0.5 x 1.5 = 0.75 stays last.
    assert skus(lifted) == ["P1", "P3", "P2", "P4"]
    assert lifted["boost"] == {
        "weight": 0.5,
        "forecast_version": shop["forecast"].pk,
        "lifted": [ids["P3"], ids["P4"]],
    }
    # The cut comes after the lift: P3 makes a list of two.
    assert skus(recommendations_for(customer=ann, limit=2)) == ["P1", "P3"]
    assert skus(recommendations_for(customer=ann, limit=4, boost=1.0))[0] == "P3"  # 1.04
    assert skus(recommendations_for(customer=ann, limit=4, boost=0)) == skus(plain)
    # The popular picks have only an order: scores 6..1, and P4's 3 x 1.5 passes P6's 4.
    picks = recommendations_for(customer=shop["newcomer"], limit=6)
    assert skus(picks) == ["P1", "P2", "P4", "P6", "P7", "P8"]
    assert picks["source"] == "popular" and picks["boost"]["lifted"] == [ids["P4"]]
    # Without an active forecast the list is the model's, and says nothing was lifted.
    ModelVersion.objects.filter(pk=shop["forecast"].pk).update(status="retired")
    unforecast = recommendations_for(customer=ann, limit=4)
    assert skus(unforecast) == skus(plain)
    assert unforecast["boost"] == {"weight": 0.5, "forecast_version": None, "lifted": []}


@pytest.mark.django_db
def test_the_api_says_when_a_list_was_boosted(workspace, other_workspace, shop, admin_client):
    api = client_for(workspace)
    url = f"/api/v1/customers/{shop['ann'].pk}/recommendations?limit=4"
    assert "boost" not in api.get(url).json()
    lifted = api.get(f"{url}&boost=0.5").json()
    assert skus(lifted) == ["P1", "P3", "P2", "P4"] and lifted["boost"]["weight"] == 0.5
    assert api.get(f"{url}&boost=0.5").json() == lifted  # the cached answer is the same
    assert "boost" not in api.get(url).json()  # and is not the unboosted one's
    for bad in ("2", "-0.1", "abc", "nan"):
        response = api.get(f"{url}&boost={bad}")
        assert response.status_code == 400 and "boost" in response.json(), bad
    # The workspace's setting applies when the request says nothing (once the process's
    # verified keys, and the workspace read with them, are renewed: 10 s at most).
    workspace.rising_boost = 0.5
    workspace.save()
    key_cache.clear()
    assert api.get(url).json()["boost"]["lifted"] == [shop["ids"]["P3"], shop["ids"]["P4"]]
    assert "boost" not in api.get(f"{url}&boost=0").json()
    # A newer forecast in which P3 is steady: the next answer follows it, cache or not.
    ModelVersion.objects.filter(pk=shop["forecast"].pk).update(status="retired")
    newer = forecast_version(workspace, {"P3": (0.0, -0.2, 0.2)})
    after = api.get(url).json()
    assert skus(after) == ["P1", "P2", "P3", "P4"]
    assert after["boost"] == {"weight": 0.5, "forecast_version": newer.pk, "lifted": []}
    # Another workspace's forecast lifts nothing here, and its key sees no customer of ours.
    forecast_version(other_workspace, {"P2": (0.9, 0.5, 1.2)})
    assert skus(api.get(url).json()) == ["P1", "P2", "P3", "P4"]
    assert client_for(other_workspace).get(url).status_code == 404

    ModelVersion.objects.filter(pk=newer.pk).update(status="retired")
    ModelVersion.objects.filter(pk=shop["forecast"].pk).update(status="active")
    page = admin_client.get(f"/admin/crm/customer/{shop['ann'].pk}/change/").content.decode()
    assert "Boosted for products forecast to rise (weight 0.5" in page
    assert "2 of these were lifted" in page and "Product P3 ↑" in page
    form = admin_client.get(f"/admin/crm/workspace/{workspace.pk}/change/").content.decode()
    assert "rising_boost" in form
