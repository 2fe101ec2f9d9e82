"""crm.services.recommendations and crm.selectors.recommendations: recommenders on the platform,
trained by a real worker, served over the API and admin."""

import json

import pytest

from crm import services
from crm.models import Customer, Order, Product, Recommendation
from crm.services.recommendations import recommender_train
from crm.tasks.models import train_recommender, write_recommendations
from marketing_ai.fastjson import JSONRenderer
from tests.conftest import wait_until
from tests.crm.factories import client_for
from workers.models import ModelVersion, TaskRun
from workers.services import model_version_promote, model_version_rollback, task_run_start


def seed_two_tastes(workspace) -> dict[str, list[int]]:
    """Tea people buy from T1..T6, coffee people from C1..C6; each buys four, on two dates."""
    skus = [f"T{i}" for i in range(1, 7)] + [f"C{i}" for i in range(1, 7)]
    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": s, "name": f"Product {s}", "price": 5} for s in skus]
    )
    groups: dict[str, list[int]] = {"T": [], "C": []}
    orders = []
    for n in range(24):
        group = "T" if n < 12 else "C"
        pk = services.customer_bulk_upsert(
            workspace=workspace, rows=[{"email": f"{group}{n}@x.io"}]
        ).ids[0]
        groups[group].append(pk)
        picks = [f"{group}{1 + (n + j) % 6}" for j in range(4)]
        for j, day in enumerate(("2026-01-01", "2026-03-15")):
            lines = [{"sku": s, "quantity": 1, "unit_price": 5} for s in picks[2 * j : 2 * j + 2]]
            orders.append(
                {
                    "external_id": f"{n}-{j}",
                    "customer": pk,
                    "placed_at": f"{day}T10:00:00Z",
                    "lines": lines,
                }
            )
    assert not services.order_bulk_upsert(workspace=workspace, rows=orders).errors
    return groups


@pytest.mark.django_db(transaction=True)
def test_worker_trains_and_customers_get_recommendations(workspace, live_worker):
    groups = seed_two_tastes(workspace)
    run = task_run_start(
        task=train_recommender,
        workspace=workspace,
        params={"model": "ease", "params": {"l2": 1.0}, "holdout_days": 30},
    )
    wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=90)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(pk=run.result["model_version"])
    assert version.status == "active" and version.workspace_id == workspace.pk
    assert version.metrics["recall@20"] > 0 and version.metrics["customers"] == 24
    assert Recommendation.objects.filter(workspace=workspace).count() == 24

    api = client_for(workspace)
    tea_drinker = groups["T"][0]
    answer = api.get(f"/api/v1/customers/{tea_drinker}/recommendations?limit=2").json()
    assert answer["source"] == "personal" and len(answer["results"]) == 2
    assert all(p["sku"].startswith("T") for p in answer["results"])  # their own taste, unbought
    bought = {"T1", "T2", "T3", "T4"}
    assert not bought & {p["sku"] for p in answer["results"]}

    newcomer = services.customer_bulk_upsert(workspace=workspace, rows=[{"email": "new@x.io"}])
    fallback = api.get(f"/api/v1/customers/{newcomer.ids[0]}/recommendations").json()
    assert fallback["source"] == "popular" and fallback["results"]

    services.privacy_erase(customer=Customer.objects.get(pk=tea_drinker), actor="test")
    assert not Recommendation.objects.filter(customer_id=tea_drinker).exists()
    assert api.get("/api/v1/customers/1/recommendations?limit=x").status_code in (400, 404)


@pytest.mark.django_db
def test_template_tag_renders_a_customers_picks(workspace):
    from campaigns import rendering
    from crm.services.recommendations import recommender_train

    groups = seed_two_tastes(workspace)
    recommender_train(workspace=workspace, model="ease", params={"l2": 1.0})
    customer = Customer.objects.get(pk=groups["C"][0])
    compiled = rendering.compile_variant(
        subject="{% load recommendations %}{% recommend customer 2 as picks %}"
        "{% for p in picks %}[{{ p.sku }}]{% endfor %}",
        preheader="",
        body_html="",
        body_text="{% recommend nobody 3 as p %}{{ p|length }}",
    )
    assert compiled.recommendations == 3  # the most any tag asks for
    rendered = compiled.render_for(customer)
    skus = rendered.subject.strip("[]").split("][")
    assert len(skus) == 2 and all(s.startswith("C") for s in skus)
    assert rendered.text == "0"  # anyone but the recipient gets no picks


@pytest.mark.django_db
def test_dlae_is_trained_when_no_model_is_named(workspace):
    from crm.services.recommendations import recommender_train

    groups = seed_two_tastes(workspace)
    version = recommender_train(workspace=workspace, params={"l2": 1.0})
    assert version.family == "recommend.dlae" and version.params["model"] == "dlae"
    picks = client_for(workspace).get(f"/api/v1/customers/{groups['C'][0]}/recommendations")
    results = picks.json()["results"]
    assert results and all(p["sku"].startswith("C") for p in results[:2])


@pytest.mark.django_db(transaction=True)
def test_repeat_purchases_keep_what_customers_bought_in_their_lists(workspace):
    from crm import selectors
    from crm.selectors import recommendations_for
    from crm.services.recommendations import recommendations_write, recommender_train
    from workers.services import model_version_promote

    groups = seed_two_tastes(workspace)
    tea = Customer.objects.get(pk=groups["T"][0])
    bought = set(selectors.purchased_product_ids(customer=tea))
    plain = recommender_train(workspace=workspace, model="ease", params={"l2": 1.0})
    assert plain.params["repeat_purchases"] is False
    listed = {pid for pid, _ in Recommendation.objects.get(customer=tea).products}
    assert listed and not listed & bought
    # A newcomer who has bought the most popular product is not offered it again...
    newcomer = services.customer_bulk_upsert(workspace=workspace, rows=[{"email": "n@x.io"}]).ids[0]
    top = recommendations_for(customer=Customer.objects.get(pk=newcomer), limit=1)["results"][0]
    services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "new-1",
                "customer": newcomer,
                "placed_at": "2026-04-01T10:00:00Z",
                "lines": [{"sku": top["sku"], "quantity": 1, "unit_price": 5}],
            }
        ],
    )
    newcomer = Customer.objects.get(pk=newcomer)
    assert top["id"] not in [p["id"] for p in recommendations_for(customer=newcomer)["results"]]

    # ...until a version that allows repeat purchases (tea runs out) is promoted.
    repeat = recommender_train(
        workspace=workspace, model="ease", params={"l2": 1.0}, repeat_purchases=True
    )
    # evaluated on every purchase of the last 30 days, buying again included
    assert repeat.params["repeat_purchases"] is True and repeat.metrics["test_customers"] == 24
    recommendations_write(version=model_version_promote(version=repeat))
    listed = [pid for pid, _ in Recommendation.objects.get(customer=tea).products]
    assert set(listed[:4]) == bought  # what they buy is what they like most
    assert top["id"] in [p["id"] for p in recommendations_for(customer=newcomer)["results"]]


@pytest.mark.django_db(transaction=True)
def test_served_answers_are_cached_until_something_changes_them(
    workspace, django_assert_num_queries, settings, admin_client
):
    from crm.models import Product
    from crm.selectors import recommendations_body
    from crm.services.recommendations import recommender_train

    groups = seed_two_tastes(workspace)
    recommender_train(workspace=workspace, model="ease", params={"l2": 1.0})
    api = client_for(workspace)
    tea = groups["T"][0]
    url = f"/api/v1/customers/{tea}/recommendations?limit=2"
    first = api.get(url).json()
    from crm.selectors import recommendations_for

    general = recommendations_for(customer=Customer.objects.get(pk=tea), limit=2)
    assert first == json.loads(JSONRenderer().render(general))  # the one-query path agrees
    with django_assert_num_queries(0):  # the answer and the API key both come from caches
        assert api.get(url).json() == first
    # The first answer read the whole (small) catalogue: another customer's costs one query.
    with django_assert_num_queries(1):
        other_tea = f"/api/v1/customers/{groups['T'][1]}/recommendations?limit=2"
        assert api.get(other_tea).json()["source"] == "personal"

    # An edited product (a single save, as in the admin) reaches the next answer.
    top = Product.objects.get(pk=first["results"][0]["id"])
    top.active = False
    top.save()
    after = api.get(url).json()
    assert after["results"] and top.pk not in [p["id"] for p in after["results"]]
    # So does a bulk upsert.
    renamed = after["results"][0]["sku"]
    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": renamed, "name": "Renamed tea", "price": 5}]
    )
    assert api.get(url).json()["results"][0]["name"] == "Renamed tea"
    # And the admin's bulk action (one UPDATE, which sends no signals).
    response = admin_client.post(
        "/admin/crm/product/",
        {"action": "deactivate", "_selected_action": [after["results"][0]["id"]]},
    )
    assert response.status_code == 302
    assert after["results"][0]["id"] not in [p["id"] for p in api.get(url).json()["results"]]

    # A newcomer's popular picks leave out what they go on to buy.
    newcomer = services.customer_bulk_upsert(workspace=workspace, rows=[{"email": "n@x.io"}]).ids[0]
    popular_url = f"/api/v1/customers/{newcomer}/recommendations?limit=3"
    picks = api.get(popular_url).json()
    assert picks["source"] == "popular"
    bought = picks["results"][0]
    other_url = f"/api/v1/customers/{groups['C'][0]}/recommendations?limit=2"
    other = api.get(other_url).json()
    services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "new-1",
                "customer": newcomer,
                "placed_at": "2026-04-01T10:00:00Z",
                "lines": [{"sku": bought["sku"], "quantity": 1, "unit_price": 5}],
            }
        ],
    )
    assert bought["id"] not in [p["id"] for p in api.get(popular_url).json()["results"]]
    with django_assert_num_queries(0):  # someone else's order leaves this answer cached
        assert api.get(other_url).json() == other

    # A reference by e-mail names whoever has that address now.
    coffee_drinker = Customer.objects.get(pk=groups["C"][1])
    by_email = f"/api/v1/customers/email:{coffee_drinker.email}/recommendations?limit=2"
    assert (
        api.get(by_email).json()
        == api.get(f"/api/v1/customers/{coffee_drinker.pk}/recommendations?limit=2").json()
    )
    assert not services.customer_update(customer=coffee_drinker, data={"email": "moved@x.io"})
    assert api.get(by_email).status_code == 404

    # An erased customer is not served from the cache.
    services.privacy_erase(customer=Customer.objects.get(pk=tea), actor="test")
    assert api.get(url).status_code == 404

    # Without Redis the answer still comes, from the database.
    coffee = groups["C"][0]
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    body = recommendations_body(workspace=workspace, ref=str(coffee), limit=2)
    assert b'"source":"personal"' in body and b'"sku":"C' in body


@pytest.mark.django_db(transaction=True)
def test_promoting_and_rolling_back_a_recommender_rewrite_every_list(
    workspace, admin_client, live_worker
):
    from crm.services.recommendations import recommender_train

    groups = seed_two_tastes(workspace)
    ease = recommender_train(workspace=workspace, model="ease", params={"l2": 1.0})
    assert ease.status == "active"
    # A customer who arrives after the first version: only the second one knows them.
    late = services.customer_bulk_upsert(workspace=workspace, rows=[{"email": "late@x.io"}]).ids[0]
    services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": "late-1",
                "customer": late,
                "placed_at": "2026-03-20T10:00:00Z",
                "lines": [{"sku": "T1", "quantity": 1, "unit_price": 5}],
            }
        ],
    )
    itemknn = recommender_train(workspace=workspace, model="itemknn")
    assert itemknn.status == "shadow"  # one recommender serves a workspace: ease is active
    api = client_for(workspace)
    tea = groups["T"][0]

    def rewritten_by(version: ModelVersion) -> None:
        run = TaskRun.objects.get(
            kind="crm.tasks.models.write_recommendations", params={"model_version": version.pk}
        )
        wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=90)
        assert TaskRun.objects.get(pk=run.pk).status == "succeeded"

    def answer(customer: int) -> dict:
        return api.get(f"/api/v1/customers/{customer}/recommendations").json()

    changelist = "/admin/workers/modelversion/"
    admin_client.post(changelist, {"action": "promote", "_selected_action": [itemknn.pk]})
    rewritten_by(itemknn)
    assert set(ModelVersion.objects.filter(status="active").values_list("pk", flat=True)) == {
        itemknn.pk
    }
    assert answer(tea)["model_version"] == itemknn.pk == answer(late)["model_version"]
    assert answer(late)["source"] == "personal"

    # Rolled back, every list is ease's again; the customer ease never saw gets its popular picks.
    admin_client.post(changelist, {"action": "roll_back", "_selected_action": [itemknn.pk]})
    rewritten_by(ease)
    assert ModelVersion.objects.get(pk=ease.pk).status == "active"
    assert ModelVersion.objects.get(pk=itemknn.pk).status == "retired"
    assert set(Recommendation.objects.values_list("model_version", flat=True)) == {ease.pk}
    assert answer(tea)["model_version"] == ease.pk
    assert answer(late) | {"results": []} == {
        "source": "popular",
        "model_version": ease.pk,
        "results": [],
    }


@pytest.mark.django_db(transaction=True)
def test_promoting_ease_while_dlae_is_active_and_rolling_back_rewrite_every_list(
    workspace, own_redis
):
    """Promotion and rollback queue their rescoring runs on a Redis of this test's own that no
    worker reads; the test runs each here, so the lists it reads are the run's own."""
    groups = seed_two_tastes(workspace)
    dlae = recommender_train(workspace=workspace, params={"l2": 1.0})  # the default recommender
    ease = recommender_train(workspace=workspace, model="ease", params={"l2": 1.0})
    assert (dlae.family, dlae.status) == ("recommend.dlae", "active")
    assert (ease.family, ease.status) == ("recommend.ease", "shadow")
    api = client_for(workspace)
    tea = groups["T"][0]

    def rescored_by(version: ModelVersion) -> None:
        """Runs here the rescoring run that making `version` active queued."""
        run = TaskRun.objects.get(
            kind=write_recommendations.name,
            params={"model_version": version.pk},
            status=TaskRun.Status.QUEUED,
        )
        write_recommendations.apply(args=[str(run.pk)])
        run.refresh_from_db()
        assert run.status == TaskRun.Status.SUCCEEDED, run.error

    def lists_from() -> set[int]:
        return set(Recommendation.objects.values_list("model_version", flat=True))

    def answer() -> dict:
        return api.get(f"/api/v1/customers/{tea}/recommendations").json()

    assert lists_from() == {dlae.pk} and answer()["model_version"] == dlae.pk
    model_version_promote(version=ease)  # another family: ease replaces dlae
    rescored_by(ease)
    assert ModelVersion.objects.get(pk=dlae.pk).status == "retired"
    assert lists_from() == {ease.pk} and answer()["model_version"] == ease.pk

    restored = model_version_rollback(family=ease.family, workspace=workspace)
    assert restored.pk == dlae.pk
    rescored_by(dlae)
    assert ModelVersion.objects.get(pk=ease.pk).status == "retired"
    assert lists_from() == {dlae.pk} and answer()["model_version"] == dlae.pk


@pytest.mark.django_db
def test_the_popular_picks_come_from_the_recommender_promoted_last(workspace):
    from crm.selectors import recommendations_for
    from workers.services import model_version_create, model_version_promote

    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": s, "name": s, "price": 5} for s in ("P1", "P2")]
    )
    p1, p2 = (p.pk for p in Product.objects.filter(workspace=workspace).order_by("sku"))
    customer = Customer.objects.create(workspace=workspace, email="n@x.io")
    for family, popular in (("recommend.ease", [p1]), ("recommend.itemknn", [p2])):
        version = model_version_create(family=family, metrics={}, workspace=workspace)
        version.params = {"popular": popular}
        version.save(update_fields=["params"])
        model_version_promote(version=version)
    answer = recommendations_for(customer=customer)
    assert answer["model_version"] == version.pk and [p["id"] for p in answer["results"]] == [p2]


@pytest.mark.django_db(transaction=True)
def test_a_deleted_order_gives_its_customer_back_what_it_bought(workspace, admin_client):
    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": s, "name": s, "price": 5} for s in ("P1", "P2", "P3")]
    )
    products = [p.pk for p in Product.objects.filter(workspace=workspace).order_by("sku")]
    # The active recommender's popular picks: what a customer without a list of their own gets.
    ModelVersion.objects.create(
        workspace=workspace,
        family="recommend.ease",
        version=1,
        status="active",
        params={"popular": products},
    )
    customer = services.customer_bulk_upsert(workspace=workspace, rows=[{"email": "n@x.io"}]).ids[0]
    api = client_for(workspace)
    url = f"/api/v1/customers/{customer}/recommendations?limit=3"

    def picks() -> list[int]:
        return [p["id"] for p in api.get(url).json()["results"]]

    assert picks() == products
    bought = services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": f"o{n}",
                "customer": customer,
                "placed_at": "2026-04-01T10:00:00Z",
                "lines": [{"sku": f"P{n}", "quantity": 1, "unit_price": 5}],
            }
            for n in (1, 2)
        ],
    ).ids
    assert picks() == products[2:]  # cached now, without what they bought
    # Deleted through the API, the order no longer counts: the cached answer is stale.
    assert api.delete(f"/api/v1/orders/{bought[0]}").status_code == 204
    assert picks() == [products[0], products[2]]
    # And through the admin's delete action.
    response = admin_client.post(
        "/admin/crm/order/",
        {
            "action": "delete_selected",
            "_selected_action": [bought[1]],
            "post": "yes",
        },
    )
    assert response.status_code == 302 and not Order.objects.filter(pk=bought[1]).exists()
    assert picks() == products


@pytest.mark.django_db(transaction=True)
def test_a_worker_trains_the_sequential_recommender_on_the_gpu_queue(workspace, live_worker):
    from crm.services.training import training_start
    from marketing_ai.ml import registry

    groups = seed_two_tastes(workspace)
    run = training_start(
        workspace=workspace,
        model="sasrec",
        params={
            "hidden": 16,
            "layers": 1,
            "heads": 1,
            "max_len": 8,
            "epochs": 40,
            "dropout": 0.0,
            "lr": 0.01,
            "batch_size": 8,
        },
    )
    assert run.queue == "gpu"
    wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=120)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(pk=run.result["model_version"])
    assert version.family == "recommend.sasrec" and "ndcg@20" in version.metrics
    # No GPU here: fp32 on the CPU, and the version says so (bf16 when a worker has CUDA).
    assert (version.metrics["device"], version.metrics["precision"]) == ("cpu", "fp32")
    # The stored artifact loads back (settings + weights) and scores like the trained model.
    model = registry.load(version.artifact_path)["model"]
    assert model.score([0]).shape == (1, 12)

    api = client_for(workspace)
    for group in ("T", "C"):
        picks = api.get(f"/api/v1/customers/{groups[group][0]}/recommendations?limit=2").json()
        assert picks["source"] == "personal"
        assert all(p["sku"].startswith(group) for p in picks["results"]), picks


@pytest.mark.django_db
def test_nightly_retrain_keeps_each_active_versions_model_and_settings(
    workspace, django_capture_on_commit_callbacks
):
    from crm.services.recommendations import recommender_train
    from crm.tasks.models import retrain_recommenders_nightly

    seed_two_tastes(workspace)
    recommender_train(workspace=workspace, model="dlae", params={"l2": 5.0}, repeat_purchases=True)
    with django_capture_on_commit_callbacks(execute=False):
        assert retrain_recommenders_nightly() == 1
    run = TaskRun.objects.get(kind="crm.tasks.models.train_recommender")
    assert run.workspace == workspace and run.queue == "ml"
    assert run.params == {"model": "dlae", "params": {"l2": 5.0}, "repeat_purchases": True}
