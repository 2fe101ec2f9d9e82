"""crm.services.forecasts: the forecast run through a real worker on a small shop (a version with
its backtest, every series' forecast adding up, daily forecasts of the total and countries,
trends, groups), drift alerts for what the replaced version got wrong, a retried run that
registers nothing twice, the nightly run for every workspace with orders."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Message
from crm.models import Forecast, ForecastAlert, ForecastTrend
from crm.selectors import forecasts as selectors
from crm.services import forecasts, training
from crm.tasks.models import forecast
from tests.campaigns.factories import sent_campaign
from tests.conftest import wait_until
from tests.crm.factories import client_for
from tests.crm.forecast_data import START, add_orders, seed_shop, stored_version
from workers.models import ModelVersion, TaskRun
from workers.services import task_run_start

# Small and quick: the engine's defaults are for the real catalogue.
QUICK = {"horizon": 4, "origins": 1, "step": 2}


@pytest.mark.django_db(transaction=True)
def test_a_worker_forecasts_every_series_and_the_api_serves_them(workspace, live_worker):
    seed_shop(workspace, weeks=20)
    # A campaign sent in week 12: a known event the engine is given.
    campaign = sent_campaign(workspace, n=5)
    Message.objects.filter(campaign=campaign).update(send_at=START + timedelta(weeks=12))
    run = task_run_start(
        task=forecast, workspace=workspace, params={**QUICK, "day_horizon": 7, "n_groups": 2}
    )
    wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=240)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.progress == 100
    version = ModelVersion.objects.get(pk=run.result["model_version"])
    assert version.family == "forecast" and version.status == ModelVersion.Status.ACTIVE
    assert version.task_run_id == run.pk
    assert {"mase", "coverage80"} <= set(version.metrics)
    assert "day_mase" in version.metrics
    assert version.params["origin"] == str(START + timedelta(weeks=19))
    assert version.params["events"] == "campaign sends per week (past and planned)"

    weekly = Forecast.objects.filter(model_version=version, frequency="week", measure="units")
    keys = set(weekly.values_list("level", "key").distinct())
    products = {("product", sku) for sku in ("MUG", "CUP", "BOWL", "CARD", "TAG", "BOW")}
    countries = {("country", c) for c in ("GB", "FR", "Unknown")}
    assert {("total", "")} | products | countries <= keys
    groups = version.params["groups"]
    assert len(groups) == 2 and sorted(sum(groups.values(), [])) == sorted(k for _, k in products)
    assert {("group", g) for g in groups} <= keys
    first = START + timedelta(weeks=20)
    assert sorted(weekly.filter(level="total").values_list("period_start", flat=True)) == [
        first + timedelta(weeks=i) for i in range(4)
    ]
    for row in weekly.filter(level="total"):
        assert row.lower <= row.mean <= row.upper
        parts = weekly.filter(period_start=row.period_start, level="product")
        assert abs(sum(p.mean for p in parts) - row.mean) < 1e-3 * max(1.0, row.mean)
    daily = Forecast.objects.filter(model_version=version, frequency="day")
    assert set(daily.values_list("level", flat=True).distinct()) == {"total", "country"}
    assert daily.filter(level="total", measure="revenue").count() == 7
    trends = ForecastTrend.objects.filter(model_version=version, level="product", measure="units")
    assert trends.count() == 6
    assert set(trends.values_list("direction", flat=True)) <= {"rising", "steady", "slowing"}

    body = client_for(workspace).get("/api/v1/forecasts", {"series": "country:GB"}).json()
    assert body["version"]["id"] == version.pk and len(body["forecast"]) == 4
    assert body["history"][-1]["actual"] > 0
    assert set(body["forecast"][0]["reasons"]) <= set(forecasts.REASON_PARTS)


@pytest.mark.django_db
def test_a_retried_run_keeps_its_version_and_a_new_one_raises_drift_alerts(workspace):
    customers = seed_shop(workspace, weeks=20)
    options = {**QUICK, "day_horizon": 0, "n_groups": 0}
    run = TaskRun.objects.create(kind=forecast.name, workspace=workspace)
    first = forecasts.forecast_run(workspace=workspace, task_run=run, **options)
    rows = Forecast.objects.filter(model_version=first).count()
    assert rows > 0

    again = forecasts.forecast_run(workspace=workspace, task_run=run, **options)
    assert again.pk == first.pk
    assert ModelVersion.objects.filter(workspace=workspace, family="forecast").count() == 1
    assert Forecast.objects.count() == rows

    # Three weeks of triple sales after the origin: the first version's band did not see it.
    spike = START + timedelta(weeks=20)
    add_orders(workspace, customers, start=spike, days=21, scale=3.0, tag="spike-")
    second = forecasts.forecast_run(
        workspace=workspace, task_run=TaskRun.objects.create(kind=forecast.name), **options
    )
    first.refresh_from_db()
    assert second.version == 2 and second.status == ModelVersion.Status.ACTIVE
    assert first.status == ModelVersion.Status.RETIRED
    assert selectors.active_version(workspace.pk) == second
    alerts = ForecastAlert.objects.filter(model_version=first)
    total = alerts.filter(level="total", measure="units").order_by("period_start")
    assert [a.period_start for a in total] == [spike + timedelta(weeks=i) for i in range(3)]
    assert all(a.actual > a.upper for a in total)
    assert not alerts.filter(key=selectors.OTHER).exists()
    assert not ForecastAlert.objects.filter(model_version=second).exists()  # nothing complete yet


@pytest.mark.django_db
def test_a_workspace_without_orders_is_refused_by_name(workspace):
    with pytest.raises(forecasts.ForecastError, match="no orders"):
        forecasts.forecast_run(workspace=workspace)


@pytest.mark.django_db
def test_the_nightly_run_starts_one_run_per_workspace_with_orders(workspace, other_workspace):
    customers = seed_shop(workspace, weeks=1)
    assert training.forecast_due() == 1
    run = TaskRun.objects.get()
    assert run.kind == "crm.tasks.models.forecast" and run.workspace == workspace
    assert run.queue == "ml"
    # Forecast since, and no order written after: the forecast stands (nothing to learn anew).
    stored_version(workspace, first_week=START + timedelta(weeks=1))
    assert training.forecast_due() == 0
    add_orders(workspace, customers, start=START + timedelta(weeks=1), days=1, tag="new-")
    assert training.forecast_due() == 1


@pytest.mark.django_db
def test_the_demo_command_queues_the_first_forecast_once(workspace):
    with pytest.raises(CommandError, match="no orders"):
        call_command("demo_forecast", workspace=workspace.slug)
    seed_shop(workspace, weeks=1)
    out = StringIO()
    call_command("demo_forecast", workspace=workspace.slug, if_empty=True, stdout=out)
    assert "queued on the ml queue" in out.getvalue()
    call_command("demo_forecast", workspace=workspace.slug, if_empty=True, stdout=out)
    assert "is queued already" in out.getvalue()
    assert TaskRun.objects.filter(kind=forecast.name, workspace=workspace).count() == 1
