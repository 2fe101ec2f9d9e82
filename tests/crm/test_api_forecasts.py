"""GET /api/v1/forecasts: a series' history and forecast from the key's own workspace, a clear
empty answer before the first run, 400s with field messages for what is not a series."""

from datetime import date

import pytest

from tests.crm.factories import client_for
from tests.crm.forecast_data import seed_shop, stored_version

pytestmark = pytest.mark.django_db

FIRST_WEEK = date(2025, 3, 31)  # the Monday after seed_shop's 12 weeks


def test_before_the_first_run_the_answer_is_empty_and_says_why(workspace):
    response = client_for(workspace).get("/api/v1/forecasts")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] is None and body["forecast"] == [] and body["history"] == []
    assert "no forecast yet" in body["message"]
    assert body["series"] == "total" and body["measure"] == "units"


def test_history_and_forecast_of_a_series(workspace):
    seed_shop(workspace, weeks=12)
    version = stored_version(workspace, first_week=FIRST_WEEK, weeks=3)
    api = client_for(workspace)
    body = api.get("/api/v1/forecasts", {"series": "country:GB"}).json()
    assert body["version"]["id"] == version.pk and body["metrics"]["mase"] == 0.8
    assert [f["period_start"] for f in body["forecast"]] == [
        "2025-03-31",
        "2025-04-07",
        "2025-04-14",
    ]
    first = body["forecast"][0]
    assert first["lower"] <= first["mean"] <= first["upper"]
    assert set(first["reasons"]) == {"level", "trend", "seasonality"}
    history = body["history"]
    # From the shop's first week (not a run of zeros before it opened) to the origin.
    assert history[0]["period_start"] == "2025-01-06"
    assert len(history) == 12 and history[-1]["period_start"] == "2025-03-24"
    assert all(h["actual"] > 0 for h in history)
    total = api.get("/api/v1/forecasts", {"series": "total"}).json()["history"]
    assert total[-1]["actual"] > history[-1]["actual"]  # FR and guests are in the total too
    mugs = api.get("/api/v1/forecasts", {"series": "product:MUG"}).json()["history"]
    group = api.get("/api/v1/forecasts", {"series": "group:0"}).json()["history"]
    assert mugs == group  # group 0 holds the mugs only


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"series": "city:Paris"}, "series"),
        ({"series": "product:NOPE"}, "series"),
        ({"series": "country:ZZ"}, "series"),
        ({"series": "group:99"}, "series"),
        ({"series": ""}, "series"),
        ({"measure": "profit"}, "measure"),
        ({"frequency": "month"}, "frequency"),
        ({"series": "product:MUG", "frequency": "day"}, "frequency"),
    ],
)
def test_what_is_not_a_series_is_a_400_naming_the_field(workspace, params, field):
    stored_version(workspace, first_week=FIRST_WEEK)
    response = client_for(workspace).get("/api/v1/forecasts", params)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field] and response.json()[field][0]


def test_a_key_sees_only_its_own_workspaces_forecast(workspace, other_workspace):
    seed_shop(workspace, weeks=12)
    stored_version(workspace, first_week=FIRST_WEEK, mean=12345.0)
    other = client_for(other_workspace)
    body = other.get("/api/v1/forecasts").json()
    assert body["version"] is None and body["forecast"] == []
    assert b"12345" not in other.get("/api/v1/forecasts").content
    # A series only the other workspace has is unknown here, not shown.
    assert other.get("/api/v1/forecasts", {"series": "product:MUG"}).status_code == 200
    stored_version(other_workspace, first_week=FIRST_WEEK, mean=7.0)
    body = other.get("/api/v1/forecasts", {"series": "product:MUG"}).json()
    assert {f["mean"] for f in body["forecast"]} <= {7.0, 8.0, 9.0, 10.0}
    assert all(h["actual"] == 0 for h in body["history"])  # the other shop sold no mugs


def test_a_key_without_crm_read_is_refused(workspace):
    stored_version(workspace, first_week=FIRST_WEEK)
    assert client_for(workspace, scopes=["tasks:read"]).get("/api/v1/forecasts").status_code == 403
