"""The admin's Forecasts page: the chart with its band, the parts of the next weeks' forecasts,
rising and slowing products, alerts and the backtest in words, the run button; another
workspace's forecasts never on it."""

from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from crm.models import ForecastAlert, ForecastTrend
from tests.crm.forecast_data import seed_shop, stored_version
from workers.models import TaskRun

pytestmark = pytest.mark.django_db

PAGE = "/admin/crm/forecast/"
FIRST_WEEK = date(2025, 3, 31)


def staff(client, workspace, *perms: str, name: str = "marketer"):
    user = get_user_model().objects.create_user(name, password="pw-for-tests", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    workspace.members.add(user)
    client.force_login(user)
    return client


def test_the_page_shows_the_chart_reasons_trends_alerts_and_backtest(client, workspace):
    seed_shop(workspace, weeks=12)
    version = stored_version(workspace, first_week=FIRST_WEEK, weeks=3)
    ForecastAlert.objects.create(
        workspace=workspace,
        model_version=version,
        level="product",
        key="MUG",
        measure="units",
        frequency="week",
        period_start=date(2025, 3, 24),
        actual=300,
        mean=100,
        lower=80,
        upper=120,
    )
    ForecastTrend.objects.create(
        workspace=workspace, model_version=version, level="product", key="CUP", measure="units",
        frequency="week", recent=0.2, forecast=9, change=44.0, change_lower=20.0,
        change_upper=90.0, direction="rising",
    )  # fmt: skip
    page = staff(client, workspace, "crm.view_forecast").get(PAGE).content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and 'class="band"' in page
    assert 'class="actual"' in page and 'class="mean"' in page
    reasons = page[page.index('id="forecast-reasons"') :]
    assert "Mon 31 Mar 2025" in reasons and "usual level" in reasons and "Christmas" in reasons
    rising = page[page.index('id="forecast-rising"') : page.index('id="forecast-slowing"')]
    assert "white ceramic coffee mug" in rising and "+30%" in rising and "+10% to +50%" in rising
    # From next to nothing, a share of change would read +4,400%: it says so instead.
    assert "blue ceramic tea cup" in rising and "+4400%" not in rising
    assert "new: next to nothing sold recently" in rising
    slowing = page[page.index('id="forecast-slowing"') :]
    assert "christmas greeting card" in slowing.split("</table>")[0]
    alerts = page[page.index('id="forecast-alerts"') :].split("</table>")[0]
    assert "white ceramic coffee mug" in alerts and "above the band" in alerts
    backtest = page[page.index('id="forecast-backtest"') :].split("</ul>")[0]
    assert "20% smaller than" in backtest and "79%" in backtest
    assert 'id="run-forecast"' not in page  # viewing only: no button it cannot press


def test_a_series_can_be_chosen_and_a_bad_one_is_explained(client, workspace):
    seed_shop(workspace, weeks=12)
    stored_version(workspace, first_week=FIRST_WEEK)
    viewer = staff(client, workspace, "crm.view_forecast")
    page = viewer.get(PAGE, {"series": "group:0"}).content.decode()
    assert "Group 0: white ceramic coffee mug" in page and "<svg" in page
    page = viewer.get(PAGE, {"series": "product:NOPE", "measure": "units"})
    assert page.status_code == 200
    assert 'id="forecast-problem"' in page.content.decode()
    odd = viewer.get(PAGE, {"workspace": "²", "series": "group:²", "frequency": "x"})
    assert odd.status_code == 200


def test_before_the_first_run_the_page_says_so_and_offers_the_run(client, workspace):
    editor = staff(client, workspace, "crm.view_forecast", "crm.add_forecast")
    page = editor.get(PAGE).content.decode()
    assert "no forecast yet" in page.lower() and 'id="run-forecast"' in page
    response = editor.post("/admin/crm/forecast/run/", {"workspace": workspace.pk})
    assert response.status_code == 302
    run = TaskRun.objects.get()
    assert run.kind == "crm.tasks.models.forecast" and run.workspace == workspace
    assert run.queue == "ml"
    page = editor.get(PAGE).content.decode()
    assert f'data-run="{run.pk}"' in page  # its progress bar, polled by taskrun-progress.js
    # A second click while it waits starts nothing and says so.
    editor.post("/admin/crm/forecast/run/", {"workspace": workspace.pk})
    assert TaskRun.objects.count() == 1
    assert "already running" in editor.get(PAGE).content.decode()


def test_another_workspaces_forecast_is_never_shown(client, workspace, other_workspace):
    seed_shop(other_workspace, weeks=12)
    stored_version(other_workspace, first_week=FIRST_WEEK, mean=98765.0)
    viewer = staff(client, workspace, "crm.view_forecast", "crm.add_forecast")
    for params in ({}, {"workspace": other_workspace.pk}, {"series": "product:MUG"}):
        page = viewer.get(PAGE, params).content.decode()
        assert "98765" not in page and "white ceramic coffee mug" not in page, params
    viewer.post("/admin/crm/forecast/run/", {"workspace": other_workspace.pk})
    assert not TaskRun.objects.exists()
