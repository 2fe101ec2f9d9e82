"""workers.services: model versions numbered per family, promoted, rolled back and held to one
active per slot (one recommender per workspace, whichever its model), and the rescoring run that
promotion and rollback start for the version made active (the runs crm registers, see
crm/apps.py)."""

import pytest
from django.db import IntegrityError, transaction

from tests.crm.factories import WorkspaceFactory
from workers import services
from workers.models import ModelVersion, TaskRun

pytestmark = pytest.mark.django_db


def test_versions_are_numbered_per_family():
    a1 = services.model_version_create(family="recommend.ease", metrics={"ndcg@10": 0.3})
    a2 = services.model_version_create(family="recommend.ease", metrics={})
    b1 = services.model_version_create(family="predict.churn", metrics={})
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)
    assert a1.status == ModelVersion.Status.SHADOW


def test_promote_retires_the_active_version_and_rollback_restores_it():
    v1 = services.model_version_create(family="f", metrics={})
    v2 = services.model_version_create(family="f", metrics={})
    services.model_version_promote(version=v1)
    services.model_version_promote(version=v2)
    v1.refresh_from_db()
    assert v1.status == ModelVersion.Status.RETIRED
    restored = services.model_version_rollback(family="f")
    assert restored.pk == v1.pk and restored.status == ModelVersion.Status.ACTIVE
    v2.refresh_from_db()
    assert v2.status == ModelVersion.Status.RETIRED
    assert ModelVersion.objects.filter(family="f", status="active").count() == 1


def test_rollback_with_nothing_before_returns_none():
    v1 = services.model_version_create(family="g", metrics={})
    services.model_version_promote(version=v1)
    assert services.model_version_rollback(family="g") is None


def test_database_allows_one_active_version_per_family():
    services.model_version_create(family="h", metrics={})
    v1 = ModelVersion.objects.get(family="h")
    ModelVersion.objects.filter(pk=v1.pk).update(status="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(family="h", version=2, status="active")


def test_set_status_refuses_active():
    v1 = services.model_version_create(family="k", metrics={})
    with pytest.raises(ValueError):
        services.model_version_set_status(version=v1, status="active")


def test_one_recommender_is_active_per_workspace_whichever_its_model():
    from crm.models import Workspace

    a, b = (Workspace.objects.create(slug=s, name=s) for s in ("a", "b"))
    ease = services.model_version_create(family="recommend.ease", metrics={}, workspace=a)
    dlae = services.model_version_create(family="recommend.dlae", metrics={}, workspace=a)
    other = services.model_version_create(family="recommend.ease", metrics={}, workspace=b)
    churn = services.model_version_create(family="predict.churn", metrics={}, workspace=a)
    for version in (ease, other, churn, dlae):
        services.model_version_promote(version=version)
    active = set(ModelVersion.objects.filter(status="active").values_list("pk", flat=True))
    assert active == {dlae.pk, other.pk, churn.pk}  # ease retired by dlae, in its workspace only
    # Rolling back the recommender of `a` brings back the model it replaced.
    restored = services.model_version_rollback(family="recommend.dlae", workspace=a)
    assert restored.pk == ease.pk
    assert ModelVersion.objects.get(pk=dlae.pk).status == "retired"


def test_registration_waits_as_a_shadow_while_any_recommender_is_active(tmp_path, settings):
    from crm.models import Workspace

    settings.DATA_DIR = tmp_path
    workspace = Workspace.objects.create(slug="a", name="a")
    first = services.model_version_register(
        workspace=workspace, family="recommend.ease", artifact={}, metrics={}
    )
    second = services.model_version_register(
        workspace=workspace, family="recommend.itemknn", artifact={}, metrics={}
    )
    churn = services.model_version_register(
        workspace=workspace, family="predict.churn", artifact={}, metrics={}
    )
    assert (first.status, second.status, churn.status) == ("active", "shadow", "active")


def test_database_allows_one_active_recommender_per_workspace():
    from crm.models import Workspace

    a, b = (Workspace.objects.create(slug=s, name=s) for s in ("a", "b"))
    ModelVersion.objects.create(workspace=a, family="recommend.ease", version=1, status="active")
    ModelVersion.objects.create(workspace=b, family="recommend.dlae", version=1, status="active")
    ModelVersion.objects.create(workspace=a, family="predict.churn", version=1, status="active")
    ModelVersion.objects.create(workspace=a, family="predict.clv", version=1, status="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(
            workspace=a, family="recommend.dlae", version=1, status="active"
        )


def test_promoting_ease_while_dlae_is_active_and_rolling_back_rescore_from_the_active_version():
    workspace = WorkspaceFactory()
    dlae, ease = (
        services.model_version_create(family=family, metrics={}, workspace=workspace)
        for family in ("recommend.dlae", "recommend.ease")
    )
    ModelVersion.objects.filter(pk__in=[dlae.pk, ease.pk]).update(artifact_path="model.pkl")
    dlae.refresh_from_db()
    ease.refresh_from_db()
    rescoring = TaskRun.objects.filter(kind="crm.tasks.models.write_recommendations")

    def statuses() -> dict[int, str]:
        return dict(ModelVersion.objects.values_list("pk", "status"))

    services.model_version_promote(version=dlae)
    services.model_version_promote(version=ease)  # another family, the same slot
    assert statuses() == {dlae.pk: "retired", ease.pk: "active"}
    assert [run.params for run in rescoring.order_by("created_at")] == [
        {"model_version": dlae.pk},
        {"model_version": ease.pk},
    ]

    restored = services.model_version_rollback(family="recommend.ease", workspace=workspace)
    assert restored.pk == dlae.pk
    assert statuses() == {dlae.pk: "active", ease.pk: "retired"}
    # Every customer's list is rewritten from the version active again.
    latest = rescoring.order_by("-created_at").first()
    assert latest.params == {"model_version": dlae.pk} and latest.workspace == workspace
    assert latest.status == TaskRun.Status.QUEUED
