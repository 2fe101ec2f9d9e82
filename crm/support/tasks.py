"""Support chat: the reply turn on the `chat` queue, not `gpu`, so a copy run there (minutes) never
holds a customer's answer (the language model is loaded once per worker process;
llm.language_model caches it), and the sweep on `default`, which must run even while every
language-model worker is busy or gone."""

import logging
import threading
from pathlib import Path

from celery.signals import worker_ready

from crm.support.services import chat_unanswered_requeue
from workers import queues
from workers.runs import queued_task

log = logging.getLogger(__name__)


@queued_task(
    queue=queues.CHAT,
    time_limit=5 * 60,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def chat_reply(message_id: int) -> None:
    """Answers one customer message; a second delivery (or one the chat sweep queued again)
    finds it answered and does nothing, or loses the claim to write the reply."""
    # The turn's module loads numpy and the language models' code: the gpu worker's, not the web's.
    from crm.support.answering import chat_answer

    chat_answer(message_id)


@queued_task(queue=queues.DEFAULT, time_limit=2 * 60, ignore_result=True)
def sweep() -> dict:
    """Queues unanswered chat messages again (CHAT_REQUEUE_SECONDS); see
    crm.support.services.chat_unanswered_requeue. Safe to run twice at once."""
    return chat_unanswered_requeue()


@worker_ready.connect
def _prepare_model(sender=None, **_) -> None:
    """A worker of the gpu or chat queue converts the default GGUF model at start (half a
    minute, once per cache), in the background, so the first chat turn only has to load it."""
    # The sender is the worker's consumer; its task consumer lists the queues it reads.
    consumer = sender if hasattr(sender, "task_consumer") else getattr(sender, "consumer", None)
    names = {q.name for q in getattr(getattr(consumer, "task_consumer", None), "queues", [])}
    if names and not names & {queues.GPU, queues.CHAT}:
        return

    def convert() -> None:
        from marketing_ai.ml.language import llm  # numpy: kept out of the web process

        try:
            location = llm.default_location()
            if location.endswith(".gguf") and Path(location).is_file():
                llm.converted(Path(location))
        except Exception:  # the first task reports a real problem; this is only a head start
            log.warning("could not prepare the language model", exc_info=True)

    threading.Thread(target=convert, name="prepare-model", daemon=True).start()
