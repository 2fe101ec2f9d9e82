"""Language-model work, routed to the `gpu` queue: copy generation (a tracked run) and chat
turns. The model is loaded once per worker process (llm.language_model caches it)."""

from celery import shared_task

from workers.models import TaskRun
from workers.tracking import Progress, tracked_task


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
    """Answers one customer message; a second delivery finds it answered and does nothing."""
    from crm.services.support import chat_answer

    chat_answer(message_id)
