"""Writes to the run ledger: starting and cancelling task runs, registering and promoting models."""

import logging
import time
from collections.abc import Callable
from typing import Any

import kombu.exceptions
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from marketing_ai import kv
from marketing_ai.ml import registry
from workers import queues
from workers.celery import app
from workers.models import ModelVersion, TaskRun, in_slot

log = logging.getLogger(__name__)

# What a send raises while the broker is unreachable (kombu wraps most of them in its own).
BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.RedisError, OSError)
# After a failed send the process sends nothing for this long (the runs stay marked unsent for
# the sweeper): a broker that hangs costs one request its timeout, not every request.
BROKER_SKIP_SECONDS = 10.0
_broker_failed: tuple[str, float] = ("", float("-inf"))  # the broker URL that failed, and when


def _broker_skipped() -> bool:
    url, at = _broker_failed
    return url == settings.CELERY_BROKER_URL and time.monotonic() - at < BROKER_SKIP_SECONDS


def _broker_failed_now(what: str, exc: BaseException) -> None:
    global _broker_failed
    _broker_failed = (settings.CELERY_BROKER_URL, time.monotonic())
    log.warning("%s not queued, the broker is unreachable: %s", what, exc)


def task_named(name: str) -> Any:
    """The Celery task registered as `name` ("campaigns.tasks.launch").

    Services start their app's tasks by name: the task modules import the services, so a
    service importing its tasks back would make a cycle. Each app's AppConfig.ready imports its
    task modules, so every process knows every task and the queue it declared; a name nobody
    registered is a LookupError at the call, not a message no worker can run.
    """
    task = app.tasks.get(name)
    if task is None:
        raise LookupError(f"no Celery task is registered as {name!r}")
    return task


def task_run_start(
    *,
    task: Any,
    params: dict | None = None,
    queue: str | None = None,
    user: Any = None,
    workspace: Any = None,
) -> TaskRun:
    """Records a queued TaskRun for `task` (a tracked Celery task, or its registered name) and
    enqueues it on commit.

    The run goes to the queue the task names where it is written (the default queue if none);
    `queue` overrides it (e.g. to check one node's worker). The message is sent only once the
    surrounding transaction commits, so a worker never looks for a row that does not exist
    yet, and a rolled-back request enqueues nothing.
    """
    if isinstance(task, str):
        task = task_named(task)
    queue = queue or queues.queue_for(task.name)
    if queue not in queues.ALL:
        raise ValueError(f"unknown queue {queue!r}; expected one of {', '.join(queues.ALL)}")
    run = TaskRun.objects.create(
        kind=task.name,
        params=params or {},
        queue=queue,
        workspace=workspace,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        # Not None while the message is on its way, so the sweeper does not send it too.
        enqueued_at=timezone.now(),
    )
    transaction.on_commit(lambda: task_run_send(run=run))
    return run


def task_run_send(*, run: TaskRun, retry_now: bool = False) -> bool:
    """Hands `run`'s message to the broker; returns whether the broker took it.

    With the broker down the run stays `queued`, marked as not sent (enqueued_at None), and the
    caller carries on: the run sweeper sends it once the broker is back. Within
    BROKER_SKIP_SECONDS of a failed send nothing is tried unless `retry_now` (the sweeper).
    """
    task = app.tasks.get(run.kind)  # the task itself where known, so eager mode applies
    try:
        if _broker_skipped() and not retry_now:
            raise kombu.exceptions.OperationalError("it failed a moment ago")
        if task is not None:
            task.apply_async(args=[str(run.pk)], queue=run.queue or None)
        else:
            app.send_task(run.kind, args=[str(run.pk)], queue=run.queue or None)
    except BROKER_ERRORS as exc:
        _broker_failed_now(f"task run {run.pk}", exc)
        TaskRun.objects.filter(pk=run.pk).update(enqueued_at=None)
        return False
    TaskRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now(), sends=F("sends") + 1)
    return True


def send_on_commit(send: Callable[[], Any], *, what: str, once: bool = False) -> None:
    """Runs `send` (a Celery task's delay or apply_async) once the transaction commits.

    For nudges whose work the database can redo later (a nightly refresh, a sweeper): with the
    broker down the write that asked for it still succeeds, and the lost nudge is logged.
    With `once`, a nudge of the same `what` already waiting for this commit is enough (a loop
    that queues a thousand webhook deliveries starts one run of them, not a thousand).
    """
    connection = transaction.get_connection()
    if once and connection.in_atomic_block:
        if any(getattr(hook, "nudge", None) == what for _, hook, _ in connection.run_on_commit):
            return

    def guarded() -> None:
        if _broker_skipped():
            log.warning("%s not queued: the broker failed a moment ago", what)
            return
        try:
            send()
        except BROKER_ERRORS as exc:
            _broker_failed_now(what, exc)

    guarded.nudge = what
    transaction.on_commit(guarded)


# A nudge is "work is waiting: start a run of this task". While one nudge's task is queued and
# not started, another adds nothing (the run will see the new work too); a flag in Redis says
# one is on its way, the task clears it as it starts. It expires, so a lost message costs
# NUDGE_PENDING_SECONDS at most (and beat's ticks come anyway).
NUDGE_PENDING_SECONDS = 5


def nudge_on_commit(name: str) -> None:
    """Queues the task `name` (no arguments) once the transaction commits, unless a queued one
    has not started yet. At a hundred writes a second this is what keeps the queue short."""
    task = task_named(name)

    def send() -> None:
        try:
            if not kv.client().set(f"nudge:{name}", 1, nx=True, ex=NUDGE_PENDING_SECONDS):
                return
        except redis.RedisError:
            pass  # the broker is this Redis: the send below meets the same outage, and says so
        task.delay()

    send_on_commit(send, what=name, once=True)


def nudge_taken(name: str) -> None:
    """Called by the task `name` as it starts: the next nudge queues a new run."""
    try:
        kv.client().delete(f"nudge:{name}")
    except redis.RedisError:
        pass


def task_run_cancel(*, run: TaskRun) -> bool:
    """Cancels a queued or running run; the task stops at its next progress report.

    Returns False when the run had already finished.
    """
    now = timezone.now()
    return bool(
        TaskRun.objects.filter(
            pk=run.pk, status__in=[TaskRun.Status.QUEUED, TaskRun.Status.RUNNING]
        ).update(status=TaskRun.Status.CANCELLED, finished_at=now, message="cancelled")
    )


@transaction.atomic
def model_version_create(
    *,
    family: str,
    metrics: dict,
    params: dict | None = None,
    artifact_path: str = "",
    task_run: TaskRun | None = None,
    workspace: Any = None,
) -> ModelVersion:
    """Registers a new shadow version of `family` (per workspace), one past the latest."""
    # Locking the family's rows serialises concurrent registrations on PostgreSQL.
    latest = (
        ModelVersion.objects.select_for_update()
        .filter(family=family, workspace=workspace)
        .aggregate(latest=Max("version"))["latest"]
    )
    return ModelVersion.objects.create(
        workspace=workspace,
        family=family,
        version=(latest or 0) + 1,
        metrics=metrics,
        params=params or {},
        artifact_path=artifact_path,
        task_run=task_run,
    )


# Family, or a shared prefix such as "recommend." -> the tracked task (params {"model_version":
# id}) that rewrites every customer's outputs from a version that has just become active. The
# apps that own those outputs fill it when they load (crm's AppConfig.ready): this layer imports
# no app, yet promotion and rollback must both rescore, whoever asks for them.
_rescoring: dict[str, Any] = {}


def rescoring_register(*, family: str, task: str) -> None:
    """Makes `task` (a tracked task's name) the run that model_version_promote (and so rollback)
    starts for a newly active version of `family` (a family, or a prefix ending in "." for all
    families under it)."""
    _rescoring[family] = task


def rescoring_task(family: str) -> Any | None:
    """The task registered for `family` (its own entry first, then a prefix), or None."""
    if family in _rescoring:
        return _rescoring[family]
    prefixes = [p for p in _rescoring if p.endswith(".") and family.startswith(p)]
    return _rescoring[max(prefixes, key=len)] if prefixes else None


def _activate(version: ModelVersion) -> ModelVersion:
    # The active version of the slot (the family, or any recommender of the workspace) retires
    # first: the database holds one active version per slot and workspace.
    ModelVersion.objects.select_for_update().filter(
        in_slot(version.family), workspace_id=version.workspace_id
    ).exclude(pk=version.pk).filter(status=ModelVersion.Status.ACTIVE).update(
        status=ModelVersion.Status.RETIRED
    )
    version.status = ModelVersion.Status.ACTIVE
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "promoted_at"])
    return version


@transaction.atomic
def model_version_promote(*, version: ModelVersion, user: Any = None) -> ModelVersion:
    """Makes `version` the active one of its slot (its family; for a recommender, every
    recommender of the workspace), retiring the one active before, and starts the rescoring run
    registered for its family (rescoring_register) once the transaction commits, so customers'
    scores or lists come from `version` from then on."""
    _activate(version)
    task = rescoring_task(version.family)
    if task is not None and version.artifact_path:
        task_run_start(
            task=task,
            params={"model_version": version.pk},
            workspace=version.workspace,
            user=user,
        )
    return version


@transaction.atomic
def model_version_rollback(
    *, family: str, workspace: Any = None, user: Any = None
) -> ModelVersion | None:
    """Re-activates the most recently promoted version of `family`'s slot before the active one,
    and rescores from it as a promotion does.

    Returns the version now active, or None when there is nothing to roll back to.
    """
    versions = ModelVersion.objects.select_for_update().filter(in_slot(family), workspace=workspace)
    active = versions.filter(status=ModelVersion.Status.ACTIVE).first()
    previous = versions.exclude(status=ModelVersion.Status.ACTIVE).filter(promoted_at__isnull=False)
    if active is not None:
        previous = previous.filter(promoted_at__lt=active.promoted_at)
    target = previous.order_by("-promoted_at").first()
    if target is None:
        return None
    return model_version_promote(version=target, user=user)


def model_version_set_status(*, version: ModelVersion, status: str) -> ModelVersion:
    """Moves a version to shadow or retired (promotion goes through model_version_promote)."""
    if status not in (ModelVersion.Status.SHADOW, ModelVersion.Status.RETIRED):
        raise ValueError("use model_version_promote to activate a version")
    version.status = status
    version.save(update_fields=["status"])
    return version


def model_version_register(
    *,
    workspace: Any,
    family: str,
    artifact: Any,
    metrics: dict,
    params: dict | None = None,
    task_run: TaskRun | None = None,
) -> ModelVersion:
    """Registers a trained model: a new version with its metrics, the artifact saved under
    DATA_DIR/models/<workspace>/<family>/v<n>.pkl, and made active when nothing in its slot
    (workers.models.slot_of) is active yet. It starts no rescoring run: the training run that
    registers it scores customers itself when it became active."""
    with transaction.atomic():
        version = model_version_create(
            family=family, metrics=metrics, params=params, task_run=task_run, workspace=workspace
        )
        directory = settings.DATA_DIR / "models" / (workspace.slug if workspace else "_") / family
        version.artifact_path = str(registry.save(artifact, directory, f"v{version.version}"))
        version.save(update_fields=["artifact_path"])
        occupied = ModelVersion.objects.filter(
            in_slot(family), workspace=workspace, status=ModelVersion.Status.ACTIVE
        ).exists()
        if not occupied:
            _activate(version)
    return version
