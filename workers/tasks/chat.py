"""Chat bookkeeping on the `default` queue (not `gpu`, where workers.tasks.language answers):
the sweep must run even while every language-model worker is busy or gone."""

from celery import shared_task


@shared_task(ignore_result=True)
def sweep() -> dict:
    """Queues unanswered chat messages again (CHAT_REQUEUE_SECONDS); see
    crm.services.support.chat_unanswered_requeue. Safe to run twice at once."""
    from crm.services.support import chat_unanswered_requeue

    return chat_unanswered_requeue()
