"""Starting training runs: the one place that knows which task trains which model and with
which parameters. The admin's *Train model*, `manage.py train_recommender` and the nightly
retraining all start their runs here."""

from typing import Any

from django.db.models import Max

from crm.models import CustomerScore, Order, Workspace
from crm.selectors import forecasts as forecast_selectors
from marketing_ai.ml import recommend
from workers.models import ModelVersion, TaskRun
from workers.services import task_run_start

DEFAULT_RECOMMENDER = "dlae"
RECOMMENDER_TASK = "crm.tasks.models.train_recommender"  # ml queue
SEQUENTIAL_RECOMMENDER_TASK = "crm.tasks.models.train_sequential_recommender"  # gpu queue
# Models trained by a task of their own, by the name staff pick them under.
OTHER_TASKS = {
    "churn": "crm.tasks.models.train_churn",
    "clv": "crm.tasks.models.train_clv",
    "rfm": "crm.tasks.segments.rfm",
    "clusters": "crm.tasks.segments.clusters",
    "send_time": "crm.tasks.models.send_time",  # each customer's best hour (best_hour scores)
    "forecast": "crm.tasks.models.forecast",  # every series' demand and revenue ahead
}
# A registered version's params that are not the model's own: what training adds to them.
RECORDED_NOT_MODEL = ("model", "popular", "repeat_purchases")
RETRAINED = {"predict.churn": "churn", "predict.clv": "clv"}  # nightly, besides recommenders


class TrainingError(ValueError):
    """A model the platform cannot train."""


def trainable() -> list[str]:
    """Every name training_start takes: the recommenders, then the other models."""
    return [*recommend.names(), *OTHER_TASKS]


def training_start(
    *,
    workspace: Workspace,
    model: str,
    params: dict | None = None,
    repeat_purchases: bool = False,
    user: Any = None,
) -> TaskRun:
    """Queues the run that trains `model` (one of trainable()) on the workspace's data.

    For a recommender, `params` are the model's own (e.g. {"l2": 500}) and `repeat_purchases`
    lets its lists hold products the customer already bought; a sequential recommender trains
    on the gpu queue. For the other models `params` are the task's (e.g. {"horizon_days": 90}).
    """
    if model in OTHER_TASKS:
        task, run_params = OTHER_TASKS[model], dict(params or {})
    elif model in recommend.names():
        task = SEQUENTIAL_RECOMMENDER_TASK if model in recommend.SEQUENTIAL else RECOMMENDER_TASK
        run_params = {
            "model": model,
            "params": dict(params or {}),
            "repeat_purchases": bool(repeat_purchases),
        }
    else:
        raise TrainingError(f"unknown model {model!r}; expected one of {', '.join(trainable())}")
    return task_run_start(task=task, params=run_params, workspace=workspace, user=user)


def retraining_start(*, version: ModelVersion) -> TaskRun:
    """A new version of `version` on the latest data, trained as it was."""
    recorded = version.params
    if version.family.startswith("recommend."):
        return training_start(
            workspace=version.workspace,
            model=recorded.get("model", version.family.removeprefix("recommend.")),
            params={k: v for k, v in recorded.items() if k not in RECORDED_NOT_MODEL},
            repeat_purchases=bool(recorded.get("repeat_purchases")),
        )
    if version.family not in RETRAINED:
        raise TrainingError(f"{version.family} is not retrained")
    return training_start(
        workspace=version.workspace, model=RETRAINED[version.family], params=recorded
    )


def retraining_due(*, recommenders: bool) -> int:
    """Starts retraining every active recommender (`recommenders`), or every other retrained
    model; returns how many runs started."""
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
    if recommenders:
        active = active.filter(family__startswith="recommend.")
    else:
        active = active.filter(family__in=list(RETRAINED))
    started = 0
    for version in active.select_related("workspace"):
        retraining_start(version=version)
        started += 1
    return started


def send_time_due() -> int:
    """Starts recomputing the best hours of every workspace that has them (their clicks and
    conversions of the last day count by the next morning); returns how many runs started."""
    having = CustomerScore.objects.filter(kind="best_hour").values("workspace_id").distinct()
    started = 0
    for workspace in Workspace.objects.filter(pk__in=having):
        training_start(workspace=workspace, model="send_time")
        started += 1
    return started


def forecast_due() -> int:
    """Starts a forecast run for every workspace with orders written since its active forecast
    (last night's orders move its origin on); returns how many runs started. A workspace whose
    orders have not changed keeps its forecast: a new run would repeat it (a historical data
    set, such as the demo's, would get an identical version every night)."""
    having = Order.objects.values("workspace_id").distinct()
    started = 0
    for workspace in Workspace.objects.filter(pk__in=having):
        version = forecast_selectors.active_version(workspace.pk)
        if (
            version is not None
            and not Order.objects.filter(
                workspace=workspace, created_at__gt=version.created_at
            ).exists()
        ):
            continue
        training_start(workspace=workspace, model="forecast")
        started += 1
    return started


# What a first run trains for the customer page to show scores, groups and recommendations.
FIRST_RUN = (DEFAULT_RECOMMENDER, "churn", "clv", "rfm", "clusters")


def _runs_of(workspace: Workspace, model: str):
    runs = TaskRun.objects.filter(workspace=workspace)
    if model in OTHER_TASKS:
        return runs.filter(kind=OTHER_TASKS[model])
    task = SEQUENTIAL_RECOMMENDER_TASK if model in recommend.SEQUENTIAL else RECOMMENDER_TASK
    return runs.filter(kind=task, params__model=model)


def training_fresh(*, workspace: Workspace, model: str) -> TaskRun | None:
    """The run that makes training `model` again needless, if any: one queued or running, or one
    that succeeded after the workspace's last order was written (the models learn from orders)."""
    runs = _runs_of(workspace, model).order_by("-created_at")
    pending = runs.filter(status__in=[TaskRun.Status.QUEUED, TaskRun.Status.RUNNING]).first()
    if pending is not None:
        return pending
    last_order = Order.objects.filter(workspace=workspace).aggregate(at=Max("created_at"))["at"]
    done = runs.filter(status=TaskRun.Status.SUCCEEDED)
    if last_order is not None:
        done = done.filter(finished_at__gte=last_order)
    return done.first()


def training_start_missing(
    *, workspace: Workspace, models: tuple[str, ...] = FIRST_RUN
) -> dict[str, tuple[TaskRun, bool]]:
    """Starts training each of `models` that is not fresh (training_fresh); returns, per model,
    its run and whether it was started now (False: the fresh run it kept)."""
    out = {}
    for model in models:
        fresh = training_fresh(workspace=workspace, model=model)
        out[model] = (
            (fresh, False) if fresh else (training_start(workspace=workspace, model=model), True)
        )
    return out
