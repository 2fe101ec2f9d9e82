"""Thin Celery tasks per domain; the module name decides the queue (see workers.queues)."""

from workers.tasks import campaigns, ml, segments, sends, system  # noqa: F401
