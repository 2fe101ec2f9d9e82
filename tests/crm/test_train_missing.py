"""`manage.py train_missing` (crm.services.training.training_start_missing): `make demo` queues
the first run's models once; a second `make demo` keeps what is queued, running or trained since
the last order, and trains again what new orders made stale or what failed."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import Order
from crm.services import training
from tests.crm.factories import seed
from workers.models import TaskRun

pytestmark = pytest.mark.django_db


def train_missing(workspace, capture) -> tuple[str, int]:
    out = StringIO()
    with capture(execute=False) as sends:
        call_command("train_missing", "--workspace", workspace.slug, stdout=out)
    return out.getvalue(), len(sends)


def test_first_run_queues_each_model_once(
    workspace, other_workspace, django_capture_on_commit_callbacks
):
    seed(workspace)
    seed(other_workspace)
    out, sent = train_missing(workspace, django_capture_on_commit_callbacks)
    runs = TaskRun.objects.filter(workspace=workspace).exclude(kind="x")  # seed's own run
    assert sent == 5 and runs.count() == 5
    assert sorted(runs.values_list("kind", flat=True)) == sorted(
        [
            "crm.tasks.models.train_recommender",
            "crm.tasks.models.train_churn",
            "crm.tasks.models.train_clv",
            "crm.tasks.segments.rfm",
            "crm.tasks.segments.clusters",
        ]
    )
    assert runs.get(kind=training.RECOMMENDER_TASK).params["model"] == "dlae"
    assert "training churn: task run" in out
    assert not TaskRun.objects.filter(workspace=other_workspace).exclude(kind="x").exists()

    # The second `make demo`, runs still queued: nothing new.
    out, sent = train_missing(workspace, django_capture_on_commit_callbacks)
    assert sent == 0 and runs.count() == 5 and "churn is fresh" in out

    # Trained since the last order: still nothing; a failed one is tried again.
    runs.update(status=TaskRun.Status.SUCCEEDED, finished_at=timezone.now())
    runs.filter(kind="crm.tasks.segments.clusters").update(status=TaskRun.Status.FAILED)
    out, sent = train_missing(workspace, django_capture_on_commit_callbacks)
    assert sent == 1 and "training clusters" in out and runs.count() == 6


def test_new_orders_make_the_models_stale(workspace, django_capture_on_commit_callbacks):
    seed(workspace)
    train_missing(workspace, django_capture_on_commit_callbacks)
    TaskRun.objects.update(status=TaskRun.Status.SUCCEEDED, finished_at=timezone.now())
    # An order written after training (the seed's, as if imported again).
    Order.objects.filter(workspace=workspace).update(created_at=timezone.now())
    _, sent = train_missing(workspace, django_capture_on_commit_callbacks)
    assert sent == 5


def test_unknown_workspace_is_an_error(db):
    with pytest.raises(CommandError, match="no workspace"):
        call_command("train_missing", "--workspace", "nope")
