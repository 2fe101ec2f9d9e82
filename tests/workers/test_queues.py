"""The real tasks' queues: each task of ours names one where it is written, and a plain delay()
publishes to it (nothing routes by name)."""

import importlib
import inspect
import json

import pytest
import redis
from django.conf import settings

from workers import queues
from workers.celery import app
from workers.services import task_run_start

OURS = ("crm.", "campaigns.", "workers.")

# The queue each important task must reach: a wrong one starves its nodes or floods others.
EXPECTED = {
    "campaigns.tasks.deliver": queues.SENDS,
    "campaigns.tasks.deliver_webhooks": queues.SENDS,
    "crm.tasks.models.train_recommender": queues.ML,
    "crm.tasks.models.write_recommendations": queues.ML,
    "crm.tasks.models.train_churn": queues.ML,
    "crm.tasks.models.score_churn": queues.ML,
    "crm.tasks.models.train_clv": queues.ML,
    "crm.tasks.models.score_clv": queues.ML,
    "crm.tasks.models.retrain_nightly": queues.ML,
    "crm.tasks.models.retrain_recommenders_nightly": queues.ML,
    "crm.tasks.models.train_sequential_recommender": queues.GPU,
    "campaigns.tasks.generate_copy": queues.GPU,
    "crm.support.tasks.chat_reply": queues.CHAT,
    "campaigns.tasks.launch": queues.DEFAULT,
    "campaigns.tasks.sweep": queues.DEFAULT,
    "campaigns.tasks.attribute_recent": queues.DEFAULT,
    "crm.support.tasks.sweep": queues.DEFAULT,
    "crm.tasks.segments.refresh_for_customers": queues.DEFAULT,
    "crm.tasks.idempotency.purge_idempotency_records": queues.DEFAULT,
    "workers.tasks.sweep_runs": queues.DEFAULT,
    "workers.tasks.selfcheck": queues.DEFAULT,
    "campaigns.journeys.tasks.advance": queues.DEFAULT,
    "campaigns.journeys.tasks.events": queues.DEFAULT,
    "campaigns.journeys.tasks.dates": queues.DEFAULT,
    "campaigns.journeys.tasks.sweep": queues.DEFAULT,
}


def ours() -> dict:
    return {name: task for name, task in app.tasks.items() if name.startswith(OURS)}


def test_every_task_of_ours_names_its_queue():
    tasks = ours()
    assert set(EXPECTED) <= set(tasks)
    declared = {name: q for name, q in queues.declared().items() if name.startswith(OURS)}
    assert set(tasks) == set(declared)
    assert set(declared.values()) <= set(queues.ALL)
    # Not through Celery's task attribute, deprecated in Celery 5.7 and without effect in 6.0.
    assert {name for name, task in tasks.items() if getattr(task, "queue", None)} == set()


def test_the_important_tasks_name_the_expected_queue():
    assert {name: queues.queue_for(name) for name in EXPECTED} == EXPECTED


def test_celery_routes_each_task_to_the_queue_it_names():
    assert list(app.conf.task_routes) == [queues.route]
    for name in ours():
        route = app.amqp.router.route({}, name, args=(), kwargs={})
        assert route["queue"].name == queues.queue_for(name), name
    # A queue given to apply_async wins (a self-check started on one node's queue).
    route = app.amqp.router.route({"queue": queues.GPU}, "workers.tasks.selfcheck")
    assert route["queue"].name == queues.GPU


def test_a_queue_outside_the_list_is_refused():
    with pytest.raises(ValueError, match="unknown queue 'cpu'"):
        queues.declare("crm.tasks.example", "cpu")
    assert "crm.tasks.example" not in queues.declared()


def test_every_beat_entry_names_a_task_of_ours():
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in ours(), entry["task"]


def test_a_plain_delay_is_published_on_the_tasks_queue(own_redis):
    """Published to a Redis of this test's own that no worker reads, each message is found
    in the list of the queue its task names."""
    sent = {}
    for name in EXPECTED:
        task = app.tasks[name]
        arity = len(inspect.signature(task.run).parameters)  # bound tasks: self is not counted
        sent[task.delay(*[1] * arity).id] = name
    client = redis.Redis.from_url(own_redis.url)
    found = {}
    for queue in queues.ALL:
        for raw in client.lrange(queue, 0, -1):
            found[json.loads(raw)["headers"]["id"]] = queue
    assert {sent[i]: found.get(i) for i in sent} == EXPECTED


@pytest.mark.django_db
def test_a_run_is_recorded_on_its_tasks_queue_unless_told_another():
    sequential = app.tasks["crm.tasks.models.train_sequential_recommender"]
    assert task_run_start(task=sequential).queue == queues.GPU
    assert task_run_start(task=app.tasks["campaigns.tasks.deliver_webhooks"]).queue == "sends"
    selfcheck = app.tasks["workers.tasks.selfcheck"]
    assert task_run_start(task=selfcheck, queue=queues.ML).queue == queues.ML


RENAMING_MIGRATIONS = (
    "workers.migrations.0006_task_names_follow_their_apps",
    "workers.migrations.0007_support_tasks_in_their_subpackage",
)


def test_the_renaming_migrations_name_real_tasks():
    """Applied in order, the renames leave every stored name on a task that exists."""
    final: dict[str, str] = {}
    for name in RENAMING_MIGRATIONS:
        renamed = importlib.import_module(name).RENAMED
        final = {old: renamed.get(new, new) for old, new in final.items()} | renamed
        assert not any(old in app.tasks for old in renamed)
    assert set(final.values()) <= set(ours())


def test_queue_module_is_import_light():
    import subprocess
    import sys

    code = "import sys, workers.queues; print('django' in sys.modules, 'celery' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
