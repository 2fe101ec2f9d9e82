"""Campaign tasks, each naming its queue where it is written: launching (writing the ledger),
the campaign sweep and attribution on `default`; message and webhook deliveries on `sends`;
copy generation on `gpu`."""

import time
from datetime import timedelta

from celery.signals import worker_ready
from django.utils import timezone

from campaigns.deliverability import esp, mailbox
from campaigns.models import Campaign, Message
from campaigns.models.deliverability import BounceMailbox
from campaigns.services import delivery, webhooks
from campaigns.services import sweep as sweeping
from campaigns.services.copy import variants_generate
from campaigns.services.fanout import deliveries_queue
from campaigns.services.lifecycle import campaign_finish_if_done
from campaigns.services.recipients import build_ledger
from campaigns.services.results import attribute_conversions
from workers import queues
from workers import services as run_services
from workers.models import ModelVersion, TaskRun
from workers.runs import Progress, nightly_task, queued_task, tracked_task
from workers.services import nudge_taken


@tracked_task(queue=queues.DEFAULT, time_limit=30 * 60)
def launch(run: TaskRun, progress: Progress) -> dict:
    """Params: campaign. Writes the ledger (one row per recipient) and queues the first sends."""
    campaign = Campaign.objects.get(pk=run.params["campaign"])
    if campaign.status == Campaign.Status.CANCELLED:
        return {"cancelled": True}
    progress(5, "resolving the audience")
    counts = build_ledger(campaign=campaign, progress=progress)
    campaign.refresh_from_db()
    if campaign.status == Campaign.Status.CANCELLED:  # cancelled while the ledger was written
        Message.objects.filter(campaign=campaign, state=Message.State.QUEUED).update(
            state=Message.State.SKIPPED, reason="cancelled"
        )
        return counts
    # Nobody to send to, or every row skipped at launch: done now, with no sends to queue.
    if campaign_finish_if_done(campaign_id=campaign.pk, ledger_written=True):
        return counts
    progress(95, "queueing sends")
    deliveries_queue(campaign.pk)
    return counts


@queued_task(queue=queues.DEFAULT, time_limit=2 * 60, acks_late=True, ignore_result=True)
def sweep() -> dict:
    result = sweeping.sweep()
    for campaign_id in result["due"]:
        deliveries_queue(campaign_id)
    if webhooks.pending_exists():
        deliver_webhooks.delay()
    return result


@worker_ready.connect
def _sweep_on_start(sender=None, **_) -> None:
    # A worker that starts after a crash picks up its predecessor's work without waiting for beat.
    sweep.delay()


@queued_task(queue=queues.DEFAULT, time_limit=10 * 60, acks_late=True, ignore_result=True)
def bandit_waves() -> dict:
    """Decides the bandit campaigns' waves whose time has come and queues their sends."""
    from campaigns.services import bandit  # numpy: the worker only

    decided = bandit.waves_decide_due(now=timezone.now())
    for campaign_id in decided:
        deliveries_queue(campaign_id)
    return {"decided": decided}


@queued_task(queue=queues.DEFAULT, time_limit=10 * 60, acks_late=True, ignore_result=True)
def attribute_recent() -> int:
    """Attributes conversions for campaigns that sent within the last 90 days."""
    since = timezone.now() - timedelta(days=90)
    total = 0
    for campaign in Campaign.objects.filter(launched_at__gte=since):
        total += attribute_conversions(campaign=campaign)
    return total


@queued_task(
    queue=queues.SENDS,
    time_limit=5 * 60,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver(campaign_id: int) -> dict:
    """Sends a batch of the campaign's due messages; queues itself again while more are due."""
    result = delivery.deliver(campaign_id=campaign_id)
    if result.get("more"):
        deliveries_queue(campaign_id, count=1)
    return result


@queued_task(queue=queues.SENDS, time_limit=5 * 60, acks_late=True, ignore_result=True)
def deliver_webhooks() -> dict:
    """Posts due webhook deliveries, batch after batch while full ones come (a backlog goes out
    now, not one batch per nudge), for WEBHOOK_DRAIN_SECONDS at most; the next run goes on."""
    nudge_taken(webhooks.DELIVER)
    started, totals = time.monotonic(), {"delivered": 0, "retrying": 0, "failed": 0}
    while True:
        counts = webhooks.deliver_due(limit=webhooks.BATCH)
        for outcome, n in counts.items():
            totals[outcome] += n
        if sum(counts.values()) < webhooks.BATCH or time.monotonic() - started > 20:
            return totals


# What a promoted or rolled-back uplift version rewrites (workers.services.model_version_promote).
run_services.rescoring_register(family="uplift.", task="campaigns.tasks.score_uplift")


@tracked_task(queue=queues.ML, time_limit=2 * 3600)
def train_uplift(run: TaskRun, progress: Progress) -> dict:
    """Params: goal (the campaigns' goal event, e.g. purchase). Trains uplift.<goal> on the
    workspace's sent campaigns with a holdout, registers it and, when active, scores everyone."""
    from campaigns.services import uplift_training  # LightGBM and numpy: the worker only

    version = uplift_training.uplift_train(
        workspace=run.workspace,
        goal=str(run.params.get("goal", "")),
        task_run=run,
        progress=progress,
    )
    return {
        "model_version": version.pk,
        "version": version.version,
        "status": version.status,
        "metrics": version.metrics,
    }


@tracked_task(queue=queues.ML, time_limit=60 * 60)
def score_uplift(run: TaskRun, progress: Progress) -> dict:
    """Params: model_version (id). Rewrites every customer's uplift.<goal> scores and the goal's
    segments from that version."""
    # numpy/LightGBM with it: loaded on use, not in the web process
    from campaigns.services import uplift_training

    version = ModelVersion.objects.get(pk=run.params["model_version"], workspace=run.workspace)
    return {"customers": uplift_training.uplift_score(version=version, progress=progress)}


@nightly_task(queue=queues.ML, time_limit=10 * 60, atomic=True)
def rescore_uplift_nightly() -> int:
    """Beat: every active uplift model scores its workspace's customers again, on today's
    features (campaigns.services.uplift.uplift_rescoring_due)."""
    # numpy/LightGBM with it: loaded on use, not in the web process
    from campaigns.services.uplift import uplift_rescoring_due

    return uplift_rescoring_due()


@tracked_task(queue=queues.GPU, time_limit=60 * 60)
def generate_copy(run: TaskRun, progress: Progress) -> dict:
    """Params: campaign, products, goal, tone, language, offer, k, seed, rounds. The model is
    loaded once per worker process (llm.language_model caches it)."""
    from marketing_ai.ml.language.llm import language_model  # numpy: kept out of the web

    campaign = Campaign.objects.get(pk=run.params["campaign"], workspace=run.workspace)
    progress(2, "loading the language model")
    model = language_model()
    progress(10, "writing")
    step = progress.span(10, 95)
    return variants_generate(
        campaign=campaign,
        params=run.params,
        model=model,
        progress=lambda share, note: step(100 * share, note),
    )


@queued_task(queue=queues.DEFAULT, time_limit=5 * 60, acks_late=True, ignore_result=True)
def poll_bounce_mailbox(mailbox_id: int) -> dict:
    """One poll of a bounce mailbox (its own beat entry, campaigns.deliverability.schedule)."""
    row = BounceMailbox.objects.filter(pk=mailbox_id, active=True).first()
    if row is None:
        return {"inactive": True}
    polled = mailbox.mailbox_poll(mailbox=row)
    return {"read": polled.read, "recorded": polled.recorded, "removed": polled.removed}


@queued_task(queue=queues.DEFAULT, time_limit=2 * 60, acks_late=True, ignore_result=True)
def process_esp_event(event_id: int) -> str:
    """Acts on an ESP's tracking event the webhook recorded (campaigns.deliverability.esp)."""
    return esp.esp_event_process(event_id=event_id)
