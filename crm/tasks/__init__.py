"""The CRM's Celery tasks, each naming its queue where it is written: segment refreshes
(default), training and scoring (ml; sequential recommenders on gpu) and the Idempotency-Key
purge (default). Support chat's tasks are in crm/support/tasks.py."""

from crm.tasks import idempotency, models, segments  # noqa: F401  (registers the tasks)
