"""campaigns.decisions.targeting: a launch targets the top k% by uplift or those above 0, sends a
random control share whatever the score, records each row's score and choice, and refuses to
launch without an active uplift model for the goal."""

import pytest
from django.utils import timezone

from campaigns.decisions import targeting
from campaigns.models import Campaign, Message
from campaigns.services import lifecycle
from crm.models import CustomerScore
from tests.campaigns.factories import client_for, launch_now, make_audience, make_campaign
from workers import services as run_services

pytestmark = pytest.mark.django_db


def with_model(workspace, goal: str = "purchase"):
    return run_services.model_version_register(
        workspace=workspace, family=f"uplift.{goal}", artifact={"stub": True}, metrics={}
    )


def scored_audience(workspace, n: int = 200, scores=None):
    """`n` consenting customers; the i-th scored scores(i) (default (i - n/2) / n)."""
    segment = make_audience(workspace, n)
    ids = sorted(segment.memberships.values_list("customer_id", flat=True))
    scores = scores or (lambda i: (i - n / 2) / n)
    CustomerScore.objects.bulk_create(
        [
            CustomerScore(
                workspace=workspace,
                customer_id=pk,
                kind="uplift.purchase",
                value=scores(i),
                computed_at=timezone.now(),
            )
            for i, pk in enumerate(ids)
        ]
    )
    return segment, ids


def test_top_k_sends_the_best_scores_and_a_random_control_share(workspace):
    with_model(workspace)
    segment, ids = scored_audience(workspace, n=400)
    campaign = make_campaign(
        workspace,
        segment,
        holdout_percent=20,
        targeting="uplift_top",
        targeting_percent=25,
        targeting_control_percent=20,
        seed=11,
    )
    launch_now(campaign)
    rows = list(Message.objects.filter(campaign=campaign))
    assert len(rows) == 400
    assert all({"uplift", "targeted", "targeting"} <= m.decision.keys() for m in rows)
    targeted = {m.customer_id for m in rows if m.decision["targeted"]}
    assert targeted == set(ids[-100:])  # the top 25% of all 400 eligible, holdout included
    live = [m for m in rows if not m.holdout]
    control = [m for m in live if m.decision["targeting_control"]]
    assert 0.12 < len(control) / len(live) < 0.28
    for m in live:
        sent = m.decision["targeted"] or m.decision["targeting_control"]
        assert (m.state == "queued") == sent
        if not sent:
            assert m.reason == "not targeted: uplift below the top 25%"
    # the control share is sent across the whole range of scores
    assert (
        min(m.decision["uplift"] for m in control) < 0 < max(m.decision["uplift"] for m in control)
    )
    held = [m for m in rows if m.holdout]
    assert held and all(
        m.reason == "holdout" and "targeting_control" not in m.decision for m in held
    )
    assert {m.decision["uplift"] for m in rows} == {
        s for s in CustomerScore.objects.values_list("value", flat=True)
    }


def test_the_same_seed_draws_the_same_control_share(workspace):
    with_model(workspace)
    segment, _ = scored_audience(workspace, n=200)
    chosen = []
    for name in ("one", "two"):
        campaign = make_campaign(
            workspace,
            segment,
            name=name,
            targeting="uplift_positive",
            seed=5,
            targeting_control_percent=30,
        )
        launch_now(campaign)
        chosen.append(
            sorted(
                Message.objects.filter(
                    campaign=campaign, decision__targeting_control=True
                ).values_list("customer_id", flat=True)
            )
        )
    assert chosen[0] == chosen[1] and chosen[0]


def test_positive_sends_those_above_zero(workspace):
    with_model(workspace)
    segment, ids = scored_audience(workspace, n=100)
    campaign = make_campaign(
        workspace, segment, targeting="uplift_positive", targeting_control_percent=0
    )
    counts = launch_now(campaign)
    queued = set(
        Message.objects.filter(campaign=campaign, state="queued").values_list(
            "customer_id", flat=True
        )
    )
    assert queued == set(ids[51:]) and counts["queued"] == 49
    skipped = Message.objects.filter(campaign=campaign, state="skipped")
    assert set(skipped.values_list("reason", flat=True)) == {
        "not targeted: predicted uplift not above 0"
    }


def test_the_ineligible_are_not_counted_in_the_top_k(workspace):
    with_model(workspace)
    segment, ids = scored_audience(workspace, n=100)
    from crm.models import Consent

    Consent.objects.filter(customer_id__in=ids[:50]).update(status="unsubscribed")
    campaign = make_campaign(
        workspace,
        segment,
        targeting="uplift_top",
        targeting_percent=10,
        targeting_control_percent=0,
    )
    launch_now(campaign)
    queued = Message.objects.filter(campaign=campaign, state="queued")
    assert sorted(queued.values_list("customer_id", flat=True)) == ids[-5:]  # 10% of 50


def test_customers_without_a_score_are_not_targeted(workspace):
    with_model(workspace)
    segment, ids = scored_audience(workspace, n=20)
    CustomerScore.objects.filter(customer_id=ids[-1]).delete()
    campaign = make_campaign(
        workspace, segment, targeting="uplift_positive", targeting_control_percent=0
    )
    launch_now(campaign)
    row = Message.objects.get(campaign=campaign, customer_id=ids[-1])
    assert row.reason == "not targeted: no uplift score" and row.decision["uplift"] is None


def test_a_campaign_to_everyone_records_the_scores_when_a_model_is_active(workspace):
    segment, ids = scored_audience(workspace, n=20)
    plain = make_campaign(workspace, segment, name="plain", holdout_percent=50)
    launch_now(plain)
    assert all(
        m.decision == {"policy": "split"} or "uplift" not in m.decision
        for m in Message.objects.filter(campaign=plain)
    )
    with_model(workspace)
    scored = make_campaign(workspace, segment, name="scored", holdout_percent=50)
    launch_now(scored)
    rows = Message.objects.filter(campaign=scored)
    assert rows.filter(state="queued").count() + rows.filter(holdout=True).count() == 20
    assert all(m.decision["uplift"] is not None for m in rows)


def test_launch_needs_an_active_model_for_the_goal_and_k(workspace):
    segment, _ = scored_audience(workspace, n=5)
    campaign = make_campaign(workspace, segment, targeting="uplift_top")
    problems = lifecycle.launch_problems(campaign)
    assert "no active uplift model for the goal 'purchase'" in problems["targeting"][0]
    assert problems["targeting_percent"] == ["required for top k% targeting: the k"]
    with pytest.raises(lifecycle.CampaignError):
        lifecycle.campaign_launch(campaign=campaign)
    # a model for another goal, or in another workspace, is not this one
    with_model(workspace, goal="signup")
    from tests.crm.factories import WorkspaceFactory

    with_model(WorkspaceFactory(slug="elsewhere"))
    assert "targeting" in lifecycle.launch_problems(campaign)
    with_model(workspace)
    Campaign.objects.filter(pk=campaign.pk).update(targeting_percent=20)
    campaign.refresh_from_db()
    assert lifecycle.launch_problems(campaign) == {}


def test_the_api_answers_400_naming_the_missing_model(workspace):
    segment, _ = scored_audience(workspace, n=5)
    campaign = make_campaign(workspace, segment, targeting="uplift_positive")
    response = client_for(workspace).post(f"/api/v1/campaigns/{campaign.pk}/launch")
    assert response.status_code == 400
    assert "no active uplift model" in response.json()["targeting"][0]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_journey_allows_uses_the_workspaces_scores_for_top_k(workspace):
    segment, ids = scored_audience(workspace, n=100)
    campaign = make_campaign(workspace, segment, seed=3)
    rule = {"targeting": "uplift_top", "percent": 10, "control_percent": 0}
    blocked = targeting.journey_allows(campaign, ids[-3:], rule)
    assert all(reason == "not targeted: no active uplift model" for reason, _ in blocked.values())
    with_model(workspace)
    # a batch of three: the top 10% of the workspace's 100 scores, not of the three
    answer = targeting.journey_allows(campaign, [ids[0], ids[50], ids[95]], rule)
    assert answer[ids[95]][0] == "" and answer[ids[95]][1]["targeted"] is True
    assert answer[ids[50]][0].startswith("not targeted") and answer[ids[0]][0]
    assert answer[ids[50]][1]["uplift"] == pytest.approx(0.0)
    everyone = targeting.journey_allows(campaign, ids[:2], {"targeting": "everyone"})
    assert everyone == {ids[0]: ("", {}), ids[1]: ("", {})}
    controlled = targeting.journey_allows(
        campaign, ids, {"targeting": "uplift_positive", "control_percent": 50}
    )
    sent_low = [pk for pk in ids[:49] if controlled[pk][0] == ""]
    assert 10 < len(sent_low) < 40  # the control share, sent whatever the score
    assert targeting.journey_rule_problems(campaign, {"targeting": "uplift_top"}) == {
        "percent": ["required for top k% targeting: a number from 1 to 100"]
    }
    with pytest.raises(ValueError):
        targeting.journey_allows(campaign, ids, {"targeting": "best"})


def test_staff_set_the_targeting_in_the_campaign_form_and_the_api(workspace, admin_client):
    page = admin_client.get("/admin/campaigns/campaign/add/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Targeting by uplift" in body and 'name="targeting_percent"' in body
    segment, _ = scored_audience(workspace, n=3)
    api = client_for(workspace)
    created = api.post(
        "/api/v1/campaigns",
        {"name": "api", "targeting": "uplift_top", "targeting_percent": 20},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["targeting"] == "uplift_top"
    assert created.json()["targeting_control_percent"] == 10
    bad = api.post(
        "/api/v1/campaigns", {"name": "bad", "targeting": "psychic", "targeting_percent": 0}
    )
    assert bad.status_code == 400
    assert set(bad.json()) >= {"targeting", "targeting_percent"}
