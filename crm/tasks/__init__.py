"""The CRM's Celery tasks, each naming its queue where it is written: segment refreshes
(default), training and scoring (ml; sequential recommenders on gpu), support chat (replies on
gpu, the sweep on default) and the Idempotency-Key purge (default)."""

from crm.tasks import chat, idempotency, models, segments  # noqa: F401  (registers the tasks)
