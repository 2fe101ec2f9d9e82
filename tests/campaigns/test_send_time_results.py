"""Best-hour campaigns' results (campaigns.services.send_time through results.campaign_stats and
the admin's results page), and timing "best" as the API and the admin form accept it."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services.results import campaign_stats
from campaigns.services.send_time import MIN_PER_GROUP, TOO_FEW
from crm.models import Customer, Event
from tests.campaigns.factories import client_for, launch_now, make_audience, make_campaign
from tests.campaigns.test_send_time import give_best_hours

pytestmark = pytest.mark.django_db


def simulated_campaign(workspace, n: int, rates: dict, *, seed: int = 0) -> Campaign:
    """A best-hour campaign to `n` customers with best hours, sent an hour ago; each recipient
    clicks and converts with the rates of their group ({"best": (click, conversion),
    "random": (...)})."""
    segment = make_audience(workspace, n)
    customers = list(Customer.objects.filter(workspace=workspace))
    give_best_hours(customers, lambda c: c.pk % 24)
    campaign = make_campaign(
        workspace, segment, timing="best", explore_percent=30, seed=seed, attribution_days=3
    )
    launch_now(campaign)
    sent = timezone.now() - timedelta(hours=1)
    Message.objects.filter(campaign=campaign).update(state="sent", sent_at=sent)
    rng = np.random.default_rng(seed)
    clicked, events = [], []
    for m in Message.objects.filter(campaign=campaign).order_by("id"):
        click, convert = rates["random" if m.decision["hour_explore"] else "best"]
        if rng.random() < click:
            clicked.append(m.pk)
        if rng.random() < convert:
            events.append(
                Event(
                    workspace=workspace,
                    customer_id=m.customer_id,
                    type="purchase",
                    occurred_at=timezone.now(),
                )
            )
    Message.objects.filter(pk__in=clicked).update(clicked_at=timezone.now())
    Event.objects.bulk_create(events)
    return campaign


def test_best_hour_against_random_hour_with_intervals(workspace):
    campaign = simulated_campaign(workspace, 1500, {"best": (0.25, 0.12), "random": (0.10, 0.04)})
    st = campaign_stats(campaign=campaign)["send_time"]
    assert st["enough"] and st["best"]["sent"] + st["random"]["sent"] == 1500
    assert 0.25 < st["random"]["sent"] / 1500 < 0.35
    # True differences 0.15 (clicks) and 0.08 (conversions); standard errors about 0.02 and
    # 0.014 at these group sizes, so 4 of them is a margin a correct estimate never misses.
    clicks, conversions = st["clicks_difference"], st["conversions_difference"]
    assert abs(clicks["difference"] - 0.15) < 0.08 and clicks["ci95"][0] > 0
    assert clicks["ci95"][0] < clicks["difference"] < clicks["ci95"][1]
    assert clicks["verdict"] == "best hour ahead"
    assert abs(conversions["difference"] - 0.08) < 0.055 and conversions["ci95"][0] > 0
    assert conversions["verdict"] == "best hour ahead"
    assert sum(st["spread"]["best"]) == st["best"]["sent"]
    assert sum(st["spread"]["explore"]) == st["random"]["sent"]
    # The API's stats answer the same comparison.
    answered = client_for(workspace).get(f"/api/v1/campaigns/{campaign.pk}/stats").json()
    assert answered["send_time"]["clicks_difference"] == clicks


def test_no_difference_reads_as_none(workspace):
    same = simulated_campaign(workspace, 1500, {"best": (0, 0), "random": (0, 0)})
    # Exactly every fifth message of each group clicked: rates equal, not equal by chance.
    for explore in (False, True):
        group = Message.objects.filter(campaign=same, decision__hour_explore=explore)
        ids = list(group.order_by("id").values_list("id", flat=True))[::5]
        Message.objects.filter(pk__in=ids).update(clicked_at=timezone.now())
    st = campaign_stats(campaign=same)["send_time"]
    assert st["enough"]
    assert abs(st["clicks_difference"]["difference"]) < 0.01
    assert st["clicks_difference"]["verdict"] == "no clear difference"


def test_a_small_send_is_too_few_to_decide(workspace):
    small = simulated_campaign(workspace, 200, {"best": (0.5, 0.2), "random": (0.0, 0.0)}, seed=1)
    st = campaign_stats(campaign=small)["send_time"]
    assert st["random"]["sent"] < MIN_PER_GROUP and not st["enough"]
    assert st["clicks_difference"]["verdict"] == TOO_FEW
    assert st["conversions_difference"]["verdict"] == TOO_FEW


def test_other_timings_have_no_send_time_results(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 3))
    launch_now(campaign)
    assert campaign_stats(campaign=campaign)["send_time"] is None


def test_the_results_page_shows_the_comparison_and_the_hours_chosen(admin_client, workspace):
    campaign = simulated_campaign(workspace, 150, {"best": (0.3, 0.1), "random": (0.1, 0.0)})
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="results-send-time"' in html and 'id="send-time-spread"' in html
    assert TOO_FEW in html  # 30% of 150 explored: under the threshold


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_hours", 0),
        ("window_hours", 169),
        ("window_hours", "x"),
        ("explore_percent", -1),
        ("explore_percent", 100.5),
        ("explore_percent", "NaN"),
        ("timing", "whenever"),
    ],
)
def test_the_api_refuses_a_best_hour_window_or_share_that_cannot_work(workspace, field, value):
    api = client_for(workspace)
    body = {"name": "c", "timing": "best", field: value}
    created = api.post("/api/v1/campaigns", body, format="json")
    assert created.status_code == 400 and set(created.json()) == {field}, created.content
    assert not Campaign.objects.exists()


def test_the_api_takes_timing_best_with_its_window_and_share(workspace):
    api = client_for(workspace)
    body = {"name": "c", "timing": "best", "window_hours": 48, "explore_percent": 12.5}
    created = api.post("/api/v1/campaigns", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["window_hours"] == 48 and created.json()["explore_percent"] == 12.5
    plain = api.post("/api/v1/campaigns", {"name": "d", "timing": "best"}, format="json").json()
    assert plain["window_hours"] == 24 and plain["explore_percent"] == 10


@pytest.mark.parametrize(
    ("field", "value", "saved"),
    [
        ("window_hours", "168", True),
        ("window_hours", "", True),  # left empty: the default
        ("window_hours", "0", False),
        ("window_hours", "169", False),
        ("explore_percent", "0", True),
        ("explore_percent", "101", False),
        ("explore_percent", "NaN", False),
    ],
)
def test_the_admin_form_holds_the_window_and_share_to_the_apis_rules(
    workspace, admin_user, rf, field, value, saved
):
    from django.contrib import admin

    request = rf.get("/")
    request.user, request.session = admin_user, {}
    form_class = admin.site._registry[Campaign].get_form(request)
    blank = form_class()  # every field at its default, as the add page shows it
    data = {name: blank[name].value() for name in blank.fields if blank[name].value() is not None}
    data.update({"workspace": workspace.pk, "name": "c", "timing": "best", field: value})
    form = form_class(data=data)
    assert form.is_valid() is saved, form.errors
    if saved:
        campaign = form.save()
        assert campaign.window_hours == (int(value) if field == "window_hours" and value else 24)
    else:
        assert set(form.errors) == {field}
