"""Language-model work, routed to the `gpu` queue: copy generation (a tracked run) and chat
turns. The model is loaded once per worker process (llm.language_model caches it)."""

import logging
import threading

from celery import shared_task
from celery.signals import worker_ready

from workers.models import TaskRun
from workers.tracking import Progress, tracked_task

log = logging.getLogger(__name__)


@tracked_task()
def generate_copy(run: TaskRun, progress: Progress) -> dict:
    """Params: campaign, products, goal, tone, language, offer, k, seed, rounds."""
    from campaigns.models import Campaign
    from campaigns.services.copy import variants_generate
    from marketing_ai.ml.language.llm import language_model

    campaign = Campaign.objects.get(pk=run.params["campaign"], workspace=run.workspace)
    progress(2, "loading the language model")
    model = language_model()
    progress(10, "writing")
    step = progress.span(10, 95)
    return variants_generate(campaign=campaign, params=run.params, model=model,
                             progress=lambda share, note: step(100 * share, note))  # fmt: skip


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def chat_reply(message_id: int) -> None:
    """Answers one customer message; a second delivery (or one the chat sweep queued again)
    finds it answered and does nothing, or loses the claim to write the reply."""
    from crm.services.support import chat_answer

    chat_answer(message_id)


@worker_ready.connect
def _prepare_model(sender=None, **_) -> None:
    """A worker of the gpu queue converts the default GGUF model at start (half a minute, once
    per cache), in the background, so the first chat turn only has to load it."""
    from workers import queues

    # The sender is the worker's consumer; its task consumer lists the queues it reads.
    consumer = sender if hasattr(sender, "task_consumer") else getattr(sender, "consumer", None)
    names = {q.name for q in getattr(getattr(consumer, "task_consumer", None), "queues", [])}
    if names and queues.GPU not in names:
        return

    def convert() -> None:
        from pathlib import Path

        from marketing_ai.ml.language import llm

        try:
            location = llm.default_location()
            if location.endswith(".gguf") and Path(location).is_file():
                llm.converted(Path(location))
        except Exception:  # the first task reports a real problem; this is only a head start
            log.warning("could not prepare the language model", exc_info=True)

    threading.Thread(target=convert, name="prepare-model", daemon=True).start()
