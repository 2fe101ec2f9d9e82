"""Bandit campaigns in the admin and the API: the fields, their validation (field errors, 400s),
the waves on the campaign's page, and the off-policy evaluation page and endpoint, whose
estimates on a log with a known truth land on it (campaigns.services.policy_eval)."""

from datetime import timedelta

import numpy as np
import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.services import bandit, policy_eval
from campaigns.services.recipients import build_ledger
from tests.campaigns.factories import client_for, make_audience, make_campaign
from tests.crm.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

RATES = {"A": 0.05, "B": 0.30}


def logged_campaign(workspace, n=1600, *, metric="click", name="Spring", **fields):
    """A fixed 50/50 split, every message sent, clicked at its variant's rate in RATES: the
    truth of "always B" is 0.30, of "always A" 0.05, of the logged split 0.175."""
    campaign = make_campaign(
        workspace,
        make_audience(workspace, n, name=name, prefix=name),
        variants=2,
        seed=1,
        ab_metric=metric,
        name=name,
        **fields,
    )
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", launched_at=timezone.now())
    campaign.refresh_from_db()
    build_ledger(campaign=campaign)
    rows = Message.objects.filter(campaign=campaign, state="queued")
    names = list(rows.values_list("pk", "variant__name"))
    # past the A/B wait (4 hours): what is younger has not had its chance to be clicked
    rows.update(state="sent", sent_at=timezone.now() - timedelta(hours=6))
    rng = np.random.default_rng(0)
    clicked = [pk for pk, name in names if rng.random() < RATES[name]]
    Message.objects.filter(pk__in=clicked).update(clicked_at=timezone.now() - timedelta(hours=1))
    return campaign


def test_policy_evaluation_finds_the_known_values_of_a_logged_split(workspace):
    campaign = logged_campaign(workspace)
    answer = policy_eval.evaluate(campaign)
    assert answer["enough"] and answer["messages"] == 1600 and answer["policies"] == {"split": 1600}
    logged = answer["logged"]
    assert logged["low"] < 0.175 < logged["high"]
    by = {c["policy"]: c for c in answer["candidates"]}
    for name, truth in (("always A", 0.05), ("always B", 0.30), ("uniform", 0.175)):
        for estimator in ("ipw", "snipw", "dr"):
            e = by[name][estimator]
            # Nine 95% intervals on draws that move with the database's ids: each one misses
            # now and then, so each is widened by half (an estimator off by more is wrong).
            half = (e["high"] - e["low"]) / 2
            assert abs(e["value"] - truth) < 1.5 * half, (name, estimator, e)
    assert by["always B"]["better"] and not by["always A"]["better"]
    # The learning policies, refitted, head for B: near B's value, above the logged split's.
    assert by["Thompson (refitted)"]["dr"]["value"] > 0.25  # B is worth 0.30, the split 0.175
    assert by["contextual (refitted)"]["dr"]["value"] > 0.2
    # Conversions: six hours into a five-day attribution window, none has had its chance.
    conversions = policy_eval.evaluate(campaign, "conversion")
    assert not conversions["enough"] and conversions["recent"] == 1600


def test_policy_evaluation_waits_for_messages_to_ripen_and_for_enough_outcomes(workspace):
    campaign = logged_campaign(workspace, n=400)
    Message.objects.filter(campaign=campaign).update(sent_at=timezone.now())
    fresh = policy_eval.evaluate(campaign)
    assert not fresh["enough"] and fresh["recent"] == 400 and fresh["messages"] == 0
    Message.objects.filter(campaign=campaign).update(
        sent_at=timezone.now() - timedelta(hours=6), clicked_at=None
    )
    five = list(Message.objects.filter(campaign=campaign).order_by("id")[:5].values_list("pk"))
    Message.objects.filter(pk__in=[pk for (pk,) in five]).update(clicked_at=timezone.now())
    few = policy_eval.evaluate(campaign)
    assert not few["enough"] and "5 clicks" in few["note"]


def test_policy_evaluation_leaves_out_messages_sent_with_certainty(workspace):
    campaign = logged_campaign(workspace, n=200)
    Message.objects.filter(campaign=campaign, variant__name="A").update(propensity=1.0)
    answer = policy_eval.evaluate(campaign)
    assert answer["certain"] == Message.objects.filter(campaign=campaign, propensity=1).count()
    assert answer["messages"] == 200 - answer["certain"]
    thin = policy_eval.evaluate(logged_campaign(workspace, n=10, name="thin"))
    assert not thin["enough"] and "at least 30" in thin["note"]


def test_admin_shows_the_waves_and_the_policy_evaluation(admin_client, workspace):
    campaign = make_campaign(
        workspace, make_audience(workspace, 300), variants=2, seed=4, bandit="thompson", waves=3
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        status="sending", launched_at=timezone.now(), wave_hours=0
    )
    campaign.refresh_from_db()
    build_ledger(campaign=campaign)
    first = Message.objects.filter(campaign=campaign, wave=1)
    first.update(state="sent", sent_at=timezone.now() - timedelta(hours=6))
    first.filter(variant__name="B").update(clicked_at=timezone.now())
    assert bandit.wave_decide_due(campaign_id=campaign.pk, now=timezone.now()) == 2
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="bandit-waves"' in html and html.count('class="bandit-wave"') == 3
    share = Campaign.objects.get(pk=campaign.pk).ab_result
    b_share = share["waves"][0]["probabilities"]["B"]
    assert f"{b_share:.2%}" in html  # wave 2's share of B, as decided (a percentage)
    assert "not yet" in html  # wave 3 waits
    url = f"/admin/campaigns/campaign/{campaign.pk}/policy-evaluation/"
    assert url in html
    results = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/results/")
    shown = results.content.decode()
    assert 'id="results-bandit"' in shown and "1 later wave decided" in shown
    assert "winner" not in shown
    evaluation = admin_client.get(url)
    assert evaluation.status_code == 200
    shown = evaluation.content.decode()
    assert 'id="evaluation-candidates"' in shown and "always B" in shown
    assert "contextual (refitted)" in shown and "Doubly robust" in shown
    figures = evaluation.context["evaluation"]
    assert f"{figures['logged']['value']:.2%}" in shown
    dr_b = next(c for c in figures["candidates"] if c["policy"] == "always B")["dr"]["value"]
    assert f"{dr_b:.2%}" in shown
    # Odd metrics fall back to the campaign's; a campaign with no logs says so.
    assert admin_client.get(url, {"metric": "²"}).status_code == 200
    empty = make_campaign(
        workspace, make_audience(workspace, 1, name="one", prefix="one"), name="e", variants=2
    )
    note = admin_client.get(f"/admin/campaigns/campaign/{empty.pk}/policy-evaluation/")
    assert note.status_code == 200 and 'id="evaluation-note"' in note.content.decode()


def form_for(admin_user, rf, workspace, **values):
    request = rf.get("/")
    request.user, request.session = admin_user, {}
    form_class = admin.site._registry[Campaign].get_form(request)
    data = {
        "workspace": workspace.pk,
        "name": "c",
        "channel": "email",
        "consent_rule": "opt_in",
        "timing": "now",
        "goal_event": "purchase",
        "attribution_days": 5,
        "holdout_percent": 0,
        "frequency_days": 7,
        "ab_metric": "click",
        "ab_wait_hours": 4,
        "waves": 4,
        "wave_hours": 4,
        # The other decisions' fields as the form shows them by default.
        "targeting": "everyone",
        "targeting_control_percent": 10,
        "window_hours": 24,
        "explore_percent": 10,
        **values,
    }
    return form_class(data=data)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"bandit": "thompson", "ab_test_percent": 20}, "bandit"),
        ({"bandit": "nonsense"}, "bandit"),
        ({"bandit": "thompson", "waves": 1}, "waves"),
        ({"bandit": "thompson", "waves": 21}, "waves"),
        ({"bandit": "contextual", "wave_hours": "1e308"}, "wave_hours"),
        ({"bandit": "contextual", "wave_hours": -1}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": 0}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": 0.5}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": 169}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": 720}, "wave_hours"),
    ],
)
def test_admin_form_refuses_a_bandit_that_cannot_work(workspace, admin_user, rf, values, field):
    form = form_for(admin_user, rf, workspace, **values)
    assert not form.is_valid() and field in form.errors, form.errors


def test_admin_form_keeps_a_bandit_that_works(workspace, admin_user, rf):
    form = form_for(admin_user, rf, workspace, bandit="contextual", waves=5, wave_hours=2)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bandit": "thompson", "ab_test_percent": 20}, "bandit"),
        ({"bandit": "greedy"}, "bandit"),
        ({"bandit": "thompson", "waves": 1}, "waves"),
        ({"bandit": "thompson", "waves": "many"}, "waves"),
        ({"bandit": "thompson", "wave_hours": 1e308}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": "NaN"}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": 0}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": -4}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": 0.5}, "wave_hours"),
        ({"bandit": "thompson", "wave_hours": 720}, "wave_hours"),
    ],
)
def test_api_refuses_a_bandit_that_cannot_work(workspace, body, field):
    api = client_for(workspace)
    created = api.post("/api/v1/campaigns", {"name": "c", **body}, format="json")
    assert created.status_code == 400 and field in created.json(), created.json()
    draft = api.post("/api/v1/campaigns", {"name": "d"}, format="json").json()
    patched = api.patch(f"/api/v1/campaigns/{draft['id']}", body, format="json")
    assert patched.status_code == 400 and field in patched.json(), patched.json()


@pytest.mark.parametrize("hours", [0, -1, 0.99, 168.5, 720])
def test_the_model_refuses_wave_hours_that_leave_no_time_or_take_months(workspace, hours):
    campaign = Campaign(workspace=workspace, name="c", bandit="thompson", wave_hours=hours)
    with pytest.raises(ValidationError) as refused:
        campaign.full_clean()
    assert any("between 1 and 168" in m for m in refused.value.message_dict["wave_hours"])


@pytest.mark.parametrize("hours", [1, 4, 168])
def test_the_model_keeps_wave_hours_from_an_hour_to_a_week(workspace, hours):
    Campaign(workspace=workspace, name="c", bandit="thompson", wave_hours=hours).full_clean()


def test_api_sets_a_bandit_and_refuses_to_launch_it_with_one_variant(workspace):
    api = client_for(workspace)
    segment = make_audience(workspace, 3)
    body = {"name": "c", "bandit": "thompson", "waves": 3, "wave_hours": 2.5,
            "include_segments": [segment.pk]}  # fmt: skip
    created = api.post("/api/v1/campaigns", body, format="json")
    assert created.status_code == 201, created.json()
    shown = created.json()
    assert (shown["bandit"], shown["waves"], shown["wave_hours"]) == ("thompson", 3, 2.5)
    base = f"/api/v1/campaigns/{shown['id']}"
    # An A/B share on a bandit campaign, added later, is refused too.
    assert "bandit" in api.patch(base, {"ab_test_percent": 20}, format="json").json()
    from tests.campaigns.factories import VariantFactory

    VariantFactory(campaign=Campaign.objects.get(pk=shown["id"]), name="A")
    launch = api.post(f"{base}/launch")
    assert launch.status_code == 400 and "two approved variants" in launch.json()["bandit"][0]


def test_api_policy_evaluation(workspace):
    campaign = logged_campaign(workspace, n=400)
    api = client_for(workspace)
    answer = api.get(f"/api/v1/campaigns/{campaign.pk}/policy-evaluation")
    assert answer.status_code == 200
    body = answer.json()
    assert body["enough"] and body["metric"] == "click" and body["messages"] == 400
    assert {c["policy"] for c in body["candidates"]} >= {"always A", "always B", "uniform"}
    bad = api.get(f"/api/v1/campaigns/{campaign.pk}/policy-evaluation", {"metric": "revenue"})
    assert bad.status_code == 400 and "metric" in bad.json()
    # Another workspace's campaign is not found, as every campaign route answers.
    other = client_for(WorkspaceFactory(slug="other", name="Other"))
    assert other.get(f"/api/v1/campaigns/{campaign.pk}/policy-evaluation").status_code == 404


def test_admin_add_and_draft_pages_render_the_bandit_fields(admin_client, workspace):
    add = admin_client.get("/admin/campaigns/campaign/add/")
    assert add.status_code == 200 and 'name="waves" value="10"' in add.content.decode()
    draft = make_campaign(workspace, make_audience(workspace, 2), variants=2, bandit="thompson")
    page = admin_client.get(f"/admin/campaigns/campaign/{draft.pk}/change/").content.decode()
    assert 'id="bandit-waves"' in page and "No waves yet" in page
    plain = make_campaign(workspace, make_audience(workspace, 2, name="p", prefix="p"), name="p")
    page = admin_client.get(f"/admin/campaigns/campaign/{plain.pk}/change/").content.decode()
    assert f"/admin/campaigns/campaign/{plain.pk}/policy-evaluation/" in page
