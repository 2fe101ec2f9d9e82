# The tasks moved from workers/tasks/ into the apps whose services they call, and a task's name
# follows its module. Stored names are rewritten: TaskRun.kind (the run sweeper sends a run by
# its kind) and django-celery-beat's PeriodicTask.task (entries staff made or retimed).

from django.db import migrations

from workers.migration_ops import rename_stored_tasks

RENAMED = {
    "workers.tasks.campaigns.launch": "campaigns.tasks.launch",
    "workers.tasks.campaigns.sweep": "campaigns.tasks.sweep",
    "workers.tasks.campaigns.attribute_recent": "campaigns.tasks.attribute_recent",
    "workers.tasks.sends.deliver": "campaigns.tasks.deliver",
    "workers.tasks.sends.deliver_webhooks": "campaigns.tasks.deliver_webhooks",
    "workers.tasks.language.generate_copy": "campaigns.tasks.generate_copy",
    "workers.tasks.language.chat_reply": "crm.tasks.chat.chat_reply",
    "workers.tasks.chat.sweep": "crm.tasks.chat.sweep",
    "workers.tasks.system.purge_idempotency_records": (
        "crm.tasks.idempotency.purge_idempotency_records"
    ),
    "workers.tasks.ml.train_recommender": "crm.tasks.models.train_recommender",
    "workers.tasks.gpu.train_sequential_recommender": (
        "crm.tasks.models.train_sequential_recommender"
    ),
    "workers.tasks.ml.write_recommendations": "crm.tasks.models.write_recommendations",
    "workers.tasks.ml.train_churn": "crm.tasks.models.train_churn",
    "workers.tasks.ml.score_churn": "crm.tasks.models.score_churn",
    "workers.tasks.ml.train_clv": "crm.tasks.models.train_clv",
    "workers.tasks.ml.score_clv": "crm.tasks.models.score_clv",
    "workers.tasks.ml.retrain_nightly": "crm.tasks.models.retrain_nightly",
    "workers.tasks.ml.retrain_recommenders_nightly": (
        "crm.tasks.models.retrain_recommenders_nightly"
    ),
    "workers.tasks.segments.refresh": "crm.tasks.segments.refresh",
    "workers.tasks.segments.refresh_for_customers": "crm.tasks.segments.refresh_for_customers",
    "workers.tasks.segments.refresh_all": "crm.tasks.segments.refresh_all",
    "workers.tasks.segments.clusters": "crm.tasks.segments.clusters",
    "workers.tasks.segments.rfm": "crm.tasks.segments.rfm",
    "workers.tasks.system.selfcheck": "workers.tasks.selfcheck",
    "workers.tasks.system.sweep_runs": "workers.tasks.sweep_runs",
}


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0005_one_active_recommender"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [rename_stored_tasks(RENAMED)]
