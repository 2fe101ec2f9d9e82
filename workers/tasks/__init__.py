"""Thin Celery tasks per domain; the module name decides the queue (see workers.queues)."""

from workers.tasks import campaigns, chat, gpu, language, ml, segments, sends, system  # noqa: F401
