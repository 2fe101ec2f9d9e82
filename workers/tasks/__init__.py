"""Thin Celery tasks per domain; the module name decides the queue (see workers.queues)."""

from workers.tasks import ml, segments, system  # noqa: F401
