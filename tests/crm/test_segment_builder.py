"""The segment builder's server side (crm.admin.segments, crm.selectors.segment_choices): the
pick-lists from the data, the live count without a chosen workspace, each workspace sealed from
the others' counts and lists, bad rules answered 400 with the node named, the "as of" note where
the data are older than a window, the count estimated from a sample where an exact one is
slow, and the Add form's example rules saved as they are shown."""

import json
import re
from html import unescape

import pytest

from crm import services
from crm.admin.segments import EXAMPLE
from crm.models import Customer, Segment
from crm.selectors.segment_count import SAMPLE_EVERY, _scaled
from tests.crm.factories import seed

pytestmark = pytest.mark.django_db


def live(client, body) -> tuple[int, dict]:
    response = client.post(
        "/admin/crm/segment/live/", json.dumps(body), content_type="application/json"
    )
    return response.status_code, response.json()


def add_customers(workspace, countries: list[str]) -> None:
    services.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"source": "shop", "external_id": f"k{i}", "email": f"k{i}@x.io", "country": c}
            for i, c in enumerate(countries)
        ],
    )


def test_choices_come_from_the_workspace_data_only(staff, workspace, other_workspace):
    seed(workspace), seed(other_workspace)
    add_customers(workspace, ["GB", "FR", "GB", "DE"])
    add_customers(other_workspace, ["JP"])
    Segment.objects.create(workspace=other_workspace, name="Theirs", kind="static")
    data = staff.get(f"/admin/crm/segment/choices/?workspace={workspace.pk}").json()
    assert data["countries"] == ["DE", "FR", "GB"]
    assert data["event_types"] == ["purchase", "view"] and data["scores"] == ["churn_risk"]
    assert [s["name"] for s in data["segments"]] == ["All"]
    assert data["newest"].startswith("2026-01-02")
    foreign = staff.get(f"/admin/crm/segment/choices/?workspace={other_workspace.pk}")
    assert foreign.status_code == 404 and "JP" not in foreign.content.decode()
    assert staff.get("/admin/crm/segment/choices/?workspace=abc").status_code == 400


def test_count_is_sealed_per_workspace(staff, workspace, other_workspace):
    add_customers(workspace, ["GB"])
    add_customers(other_workspace, ["GB", "GB"])
    rules = {"attribute": "country", "op": "eq", "value": "GB"}
    status, body = live(staff, {"workspace": workspace.pk, "rules": rules})
    assert (status, body["count"]) == (200, 1)
    assert [c["email"] for c in body["sample"]] == ["k0@x.io"]
    status, body = live(staff, {"workspace": other_workspace.pk, "rules": rules})
    assert status == 404 and "count" not in body
    status, body = live(staff, {"workspace": 10**9, "rules": rules})  # none: the same answer
    assert status == 404


def test_count_without_a_chosen_workspace_uses_the_only_one_or_asks(
    staff, admin_client, workspace, other_workspace
):
    add_customers(workspace, ["GB", "FR"])
    rules = {"attribute": "country", "op": "in", "value": ["GB", "FR"]}
    for missing in ({}, {"workspace": ""}, {"workspace": None}):
        status, body = live(staff, {**missing, "rules": rules})
        assert (status, body["count"]) == (200, 2)  # the user's one workspace
        # A superuser sees both workspaces: asked to pick one, not a 500.
        status, body = live(admin_client, {**missing, "rules": rules})
        assert (status, body) == (400, {"error": "pick a workspace"})
    admin_client.post("/admin/crm/workspace/switch/", {"workspace": workspace.pk})
    assert live(admin_client, {"rules": rules})[1]["count"] == 2  # the switcher's choice


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        ({"all": [{"attribute": "colour", "op": "eq", "value": "red"}]}, "rules.all[0].attribute"),
        ({"any": [{"orders": {"op": "about", "value": 2}}]}, "rules.any[0].orders"),
        ({"score": "churn_risk", "op": "gt", "value": "high"}, "rules.value"),
        ({"event": "view", "within_days": 0}, "rules.within_days"),
        ([], "non-empty JSON object"),
    ],
)
def test_bad_rules_answer_400_naming_the_condition(staff, workspace, rules, named):
    status, body = live(staff, {"workspace": workspace.pk, "rules": rules})
    assert status == 400 and named in body["error"]


def test_a_window_older_than_the_data_says_so_and_offers_the_newest_moment(staff, workspace):
    seed(workspace)  # its order and event are from January 2026; today is later than 90 days on
    rules = {"orders": {"op": "gte", "value": 1}, "within_days": 90}
    status, body = live(staff, {"workspace": workspace.pk, "rules": rules})
    assert status == 200 and body["count"] == 0
    assert body["as_of_note"] == (
        "The newest event or order is from 2026-01-02; within 90 days of today finds none of them."
    )
    assert body["as_of_suggestion"] == "2026-01-03T00:00:00Z"
    status, body = live(
        staff, {"workspace": workspace.pk, "rules": {**rules, "as_of": body["as_of_suggestion"]}}
    )
    assert (status, body["count"]) == (200, 1) and "as_of_note" not in body
    # No window, no note.
    status, body = live(staff, {"workspace": workspace.pk, "rules": {"orders": None}})
    assert (status, body["count"]) == (200, 1) and "as_of_note" not in body


def test_add_form_shows_the_example_rules_once_encoded_and_they_save(staff, workspace):
    page = staff.get("/admin/crm/segment/add/").content.decode()
    shown = re.search(r'<textarea[^>]*class="segment-rules"[^>]*>(.*?)</textarea>', page, re.S)
    text = unescape(shown.group(1)).strip()
    assert json.loads(text) == EXAMPLE  # the tree itself, not a string holding it
    response = staff.post(
        "/admin/crm/segment/add/",
        {"workspace": workspace.pk, "name": "Example", "kind": "rules", "rules": text},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Segment.objects.get(name="Example").rules == EXAMPLE


def test_count_is_exact_when_quick_and_estimated_from_the_sample_when_not(
    staff, workspace, settings
):
    add_customers(workspace, ["GB" if i % 3 else "FR" for i in range(400)])
    rules = {"attribute": "country", "op": "eq", "value": "GB"}
    gb = Customer.objects.filter(workspace=workspace, country="GB")
    status, body = live(staff, {"workspace": workspace.pk, "rules": rules})
    assert (status, body["count"], body["estimated"]) == (200, gb.count(), False)
    assert "low" not in body

    settings.SEGMENT_LIVE_EXACT_BUDGET_MS = 0  # any exact count is too slow
    status, body = live(staff, {"workspace": workspace.pk, "rules": rules})
    sampled = sum(1 for pk in gb.values_list("pk", flat=True) if pk % SAMPLE_EVERY == 0)
    assert status == 200 and body["estimated"] and body["sampled"] == SAMPLE_EVERY
    assert body["count"] == sampled * SAMPLE_EVERY
    assert body["low"] <= gb.count() <= body["high"]
    assert len(body["sample"]) == 10  # the members listed are real ones, not the sample's


def test_estimate_interval_where_nobody_was_sampled():
    assert _scaled(0, 16) == {"count": 0, "low": 0, "high": 48}
    wide = _scaled(4, 16)
    assert wide["low"] >= 4 and wide["low"] < 64 < wide["high"]
    narrow = _scaled(2500, 16)  # ±4% at 40,000
    assert 0.95 < narrow["low"] / 40000 < 0.97 and 1.03 < narrow["high"] / 40000 < 1.05
