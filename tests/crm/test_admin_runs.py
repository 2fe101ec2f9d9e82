"""crm.admin.runs: the task-run admin (progress bars, the worker self-check) and the
model-version admin (promote, roll back, which rescore from the version made active; *Train
model*, which starts crm.services.training's run)."""

import pytest
from django.contrib.auth import get_user_model

from crm.models import Workspace
from workers import services
from workers.models import ModelVersion, TaskRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", password="pw-for-tests")
    client.force_login(user)
    return client


def test_taskrun_changelist_shows_progress_bar(admin_client):
    TaskRun.objects.create(kind="workers.tasks.selfcheck", progress=42, status="running")
    page = admin_client.get("/admin/workers/taskrun/").content.decode()
    assert '<progress max="100" value="42">' in page
    assert "Run worker self-check" in page


def test_selfcheck_button_queues_a_run_per_queue(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post("/admin/workers/taskrun/selfcheck/", {"queue": "all"})
    assert response.status_code == 302
    assert sorted(TaskRun.objects.values_list("queue", flat=True)) == [
        "chat",
        "default",
        "gpu",
        "ml",
        "sends",
    ]
    assert len(callbacks) == 5  # one enqueue per run, sent only on commit


def test_modelversion_promote_action(admin_client):
    one = services.model_version_create(family="predict.churn", metrics={"auc": 0.8})
    two = services.model_version_create(family="predict.churn", metrics={"auc": 0.85})
    services.model_version_promote(version=one)
    admin_client.post(
        "/admin/workers/modelversion/",
        {"action": "promote", "_selected_action": [two.pk]},
    )
    assert ModelVersion.objects.get(pk=two.pk).status == "active"
    assert ModelVersion.objects.get(pk=one.pk).status == "retired"
    page = admin_client.get("/admin/workers/modelversion/").content.decode()
    assert "auc=0.85" in page


def test_train_recommender_button_queues_a_run(admin_client, django_capture_on_commit_callbacks):
    workspace = Workspace.objects.create(slug="w", name="W")
    page = admin_client.get("/admin/workers/modelversion/").content.decode()
    assert "Train model" in page and '<option value="churn">' in page
    assert '<option value="dlae" selected>' in page  # the platform's default recommender
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            "/admin/workers/modelversion/train/",
            {"workspace": workspace.pk, "model": "ease", "repeat_purchases": "1"},
        )
    assert response.status_code == 302
    run = TaskRun.objects.get()
    assert run.kind == "crm.tasks.models.train_recommender" and run.queue == "ml"
    assert run.workspace == workspace and len(callbacks) == 1
    # The same parameters as `manage.py train_recommender` and the nightly retrain record.
    assert run.params == {"model": "ease", "params": {}, "repeat_purchases": True}


@pytest.mark.parametrize("workspace", ["abc", "²", "١٢", str(2**70), ""])
def test_train_button_refuses_what_is_not_a_workspace_id(admin_client, workspace):
    response = admin_client.post(
        "/admin/workers/modelversion/train/", {"workspace": workspace, "model": "ease"}
    )
    assert response.status_code == 302  # back to the list with "Pick one of your workspaces"
    assert not TaskRun.objects.exists()


def test_modelversion_roll_back_action_rescores_from_the_restored_version(
    admin_client, django_capture_on_commit_callbacks
):
    workspace = Workspace.objects.create(slug="w", name="W")
    one, two = (
        services.model_version_create(family="predict.churn", metrics={}, workspace=workspace)
        for _ in range(2)
    )
    ModelVersion.objects.filter(pk__in=[one.pk, two.pk]).update(artifact_path="churn.pkl")
    changelist = "/admin/workers/modelversion/"
    with django_capture_on_commit_callbacks(execute=False):
        for version in (one, two):
            admin_client.post(changelist, {"action": "promote", "_selected_action": [version.pk]})
    promoted = TaskRun.objects.filter(kind="crm.tasks.models.score_churn")
    assert [r.params for r in promoted.order_by("created_at")] == [
        {"model_version": one.pk},
        {"model_version": two.pk},
    ]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post(changelist, {"action": "roll_back", "_selected_action": [two.pk]})
    assert ModelVersion.objects.get(pk=one.pk).status == "active"
    # The customers' churn risk is rewritten from the version active again.
    run = promoted.order_by("-created_at").first()
    assert run.params == {"model_version": one.pk} and run.status == "queued"
    assert run.workspace == workspace and len(callbacks) == 1
