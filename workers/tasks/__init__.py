"""Thin Celery tasks per domain; the module name decides the queue (see workers.queues)."""

from workers.tasks import campaigns, gpu, ml, segments, sends, system  # noqa: F401
