import pytest
from django.db import IntegrityError, transaction

from workers import services
from workers.models import ModelVersion

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
