"""workers/migrations: the migrations of workers that change data, run against the test database and
back."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from crm.models import Workspace

BEFORE_ONE_RECOMMENDER = [("workers", "0004_taskrun_enqueued_at_sends")]
ONE_RECOMMENDER = [("workers", "0005_one_active_recommender")]


@pytest.mark.django_db(transaction=True)
def test_where_two_recommenders_were_active_the_one_promoted_last_stays_active():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE_ONE_RECOMMENDER)
        old = executor.loader.project_state(BEFORE_ONE_RECOMMENDER).apps
        version = old.get_model("workers", "ModelVersion").objects
        a, b = (Workspace.objects.create(slug=s, name=s) for s in ("a", "b"))
        now = timezone.now()
        rows = [
            (a, "recommend.ease", 2),
            (a, "recommend.dlae", 1),
            (a, "recommend.als", None),
            (a, "predict.churn", 3),
            (b, "recommend.ease", 3),
        ]
        for workspace, family, days_ago in rows:
            version.create(
                workspace_id=workspace.pk,
                family=family,
                version=1,
                status="active",
                promoted_at=days_ago and now - timedelta(days=days_ago),
            )
        executor = MigrationExecutor(connection)
        executor.migrate(ONE_RECOMMENDER)
        after = executor.loader.project_state(ONE_RECOMMENDER).apps
        active = after.get_model("workers", "ModelVersion").objects.filter(status="active")
        assert sorted(active.values_list("workspace__slug", "family")) == [
            ("a", "predict.churn"),
            ("a", "recommend.dlae"),
            ("b", "recommend.ease"),
        ]
    finally:
        MigrationExecutor(connection).migrate(latest)


BEAT = ("django_celery_beat", "0019_alter_periodictasks_options")
BEFORE_RENAMING = [("workers", "0005_one_active_recommender"), BEAT]
RENAMING = [("workers", "0006_task_names_follow_their_apps"), BEAT]


@pytest.mark.django_db(transaction=True)
def test_runs_and_beat_entries_of_the_old_task_names_get_the_new_ones():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(BEFORE_RENAMING)
        old = executor.loader.project_state(BEFORE_RENAMING).apps
        run = old.get_model("workers", "TaskRun").objects.create(
            kind="workers.tasks.ml.train_recommender", queue="ml"
        )
        every = old.get_model("django_celery_beat", "IntervalSchedule").objects.create(
            every=10, period="seconds"
        )
        entry = old.get_model("django_celery_beat", "PeriodicTask").objects.create(
            name="staff's sweep", task="workers.tasks.campaigns.sweep", interval=every
        )
        executor = MigrationExecutor(connection)
        executor.migrate(RENAMING)
        after = executor.loader.project_state(RENAMING).apps
        assert after.get_model("workers", "TaskRun").objects.get(pk=run.pk).kind == (
            "crm.tasks.models.train_recommender"
        )
        beat = after.get_model("django_celery_beat", "PeriodicTask").objects.get(pk=entry.pk)
        assert beat.task == "campaigns.tasks.sweep"

        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE_RENAMING)  # and back
        old = executor.loader.project_state(BEFORE_RENAMING).apps
        kind = old.get_model("workers", "TaskRun").objects.get(pk=run.pk).kind
        assert kind == "workers.tasks.ml.train_recommender"
    finally:
        MigrationExecutor(connection).migrate(latest)
