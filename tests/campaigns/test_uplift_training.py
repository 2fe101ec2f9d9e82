"""campaigns.services.uplift_training through a real worker: the uplift model of a goal is
trained on the ledger's randomised sends, registered with its Qini on held-out customers, and
scores everyone (uplift with reasons, and the two outcome chances) into the four segments."""

import numpy as np
import pytest

from campaigns.services import uplift
from campaigns.services.uplift_training import segment_name, uplift_train
from crm.models import CustomerScore, Segment, SegmentMembership
from marketing_ai.ml.uplift.learners import LEARNERS
from tests.campaigns.uplift_world import sent_campaign, shop
from tests.conftest import wait_until
from workers import services as run_services
from workers.models import ModelVersion, TaskRun


def members(workspace, group: str) -> set[int]:
    segment = Segment.objects.get(workspace=workspace, name=segment_name("purchase", group))
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("customer_id", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_trains_scores_and_fills_the_segments(workspace, live_worker):
    segment, kinds = shop(workspace, n=800)
    sent_campaign(workspace, segment)
    run = uplift.uplift_training_start(workspace=workspace, goal="purchase")
    assert run.queue == "ml"
    wait_until(lambda: TaskRun.objects.get(pk=run.pk).status in TaskRun.FINISHED, timeout=240)
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED, run.error
    assert run.progress == 100
    version = ModelVersion.objects.get(pk=run.result["model_version"])
    assert version.family == "uplift.purchase" and version.status == "active"
    m = version.metrics
    assert m["rows_treated"] + m["rows_control"] == 800
    assert abs(m["rows_treated"] - 400) < 60
    assert m["learner"] in (*LEARNERS, "mean")
    assert m["qini_ci95"][0] <= m["qini"] <= m["qini_ci95"][1]
    # measured on the 200 customers held out: better than random, with a wide interval
    assert m["qini"] > 0

    scores = {
        kind: dict(
            CustomerScore.objects.filter(workspace=workspace, kind=kind).values_list(
                "customer_id", "value"
            )
        )
        for kind in ("uplift.purchase", "uplift.purchase.if_sent", "uplift.purchase.if_not")
    }
    assert all(len(s) == 800 for s in scores.values())
    by_kind = {
        kind: np.mean([scores["uplift.purchase"][pk] for pk, k in kinds.items() if k == kind])
        for kind in ("lapsing", "frequent", "recent", "lapsed")
    }
    assert by_kind["lapsing"] > 0.1 and by_kind["frequent"] < 0
    assert by_kind["lapsing"] > by_kind["recent"] and by_kind["lapsing"] > by_kind["lapsed"]
    some = CustomerScore.objects.filter(kind="uplift.purchase").first()
    assert some.reasons and some.reasons[0]["feature"] in version.params["features"]
    assert some.model_version_id == version.pk

    lapsing = {pk for pk, k in kinds.items() if k == "lapsing"}
    frequent = {pk for pk, k in kinds.items() if k == "frequent"}
    persuadables, disturbed = (
        members(workspace, "persuadables"),
        members(workspace, "do-not-disturbs"),
    )
    assert len(persuadables & lapsing) > 0.8 * len(lapsing)
    assert len(disturbed & frequent) > 0.4 * len(frequent)
    groups = [
        members(workspace, g)
        for g in ("persuadables", "sure things", "lost causes", "do-not-disturbs")
    ]
    assert sum(len(g) for g in groups) == 800  # a partition of the scored
    assert len(set().union(*groups)) == 800


@pytest.mark.django_db
def test_too_little_data_is_a_clear_error(workspace):
    with pytest.raises(uplift.UpliftError, match="no sent campaign with a holdout"):
        uplift_train(workspace=workspace, goal="purchase")
    segment, _ = shop(workspace, n=24)
    sent_campaign(workspace, segment)
    with pytest.raises(uplift.UpliftError, match="too few rows"):
        uplift_train(workspace=workspace, goal="purchase")
    with pytest.raises(uplift.UpliftError):
        uplift.uplift_training_start(workspace=workspace, goal="x" * 40)
    assert not ModelVersion.objects.exists()


def test_a_promoted_version_rescores_with_the_uplift_task():
    assert run_services.rescoring_task("uplift.purchase") == uplift.SCORE_TASK


@pytest.mark.django_db
def test_staff_start_training_from_the_campaign_list(workspace, admin_client):
    from tests.campaigns.factories import CampaignFactory

    first = CampaignFactory(workspace=workspace, name="one")
    second = CampaignFactory(workspace=workspace, name="two")
    third = CampaignFactory(workspace=workspace, name="three", goal_event="signup")
    response = admin_client.post(
        "/admin/campaigns/campaign/",
        {"action": "train_uplift", "_selected_action": [first.pk, second.pk, third.pk]},
        follow=True,
    )
    assert response.status_code == 200
    runs = TaskRun.objects.filter(kind=uplift.TRAIN_TASK, workspace=workspace)
    assert sorted(r.params["goal"] for r in runs) == ["purchase", "signup"]
    assert {r.queue for r in runs} == {"ml"}


@pytest.mark.django_db
def test_every_active_uplift_model_rescores_nightly(workspace):
    from tests.crm.factories import WorkspaceFactory

    other = WorkspaceFactory(slug="other")
    for space, family in (
        (workspace, "uplift.purchase"),
        (other, "uplift.signup"),
        (other, "predict.churn"),
    ):
        run_services.model_version_register(workspace=space, family=family, artifact={}, metrics={})
    assert uplift.uplift_rescoring_due() == 2
    runs = TaskRun.objects.filter(kind=uplift.SCORE_TASK)
    assert {r.workspace_id for r in runs} == {workspace.pk, other.pk}


@pytest.mark.django_db
def test_a_retried_run_keeps_its_version_and_finishes_its_scores(workspace):
    """The sweeper requeues a run whose worker died mid-scoring: the retry registers no second
    version and writes the scores the first attempt may not have finished."""
    segment, _ = shop(workspace)
    sent_campaign(workspace, segment)
    run = TaskRun.objects.create(kind="campaigns.tasks.train_uplift", workspace=workspace)
    first = uplift_train(workspace=workspace, goal="purchase", task_run=run)
    assert first.status == ModelVersion.Status.ACTIVE
    CustomerScore.objects.filter(workspace=workspace, kind__startswith="uplift.").delete()
    again = uplift_train(workspace=workspace, goal="purchase", task_run=run)
    assert again.pk == first.pk and ModelVersion.objects.count() == 1
    assert CustomerScore.objects.filter(workspace=workspace, kind="uplift.purchase").exists()
