"""Training and scoring: CPU work on the `ml` queue, sequential recommenders on `gpu` (CUDA in
bf16 where a node has one). The services are imported inside the task bodies: they load numpy
and scipy, which the web process (it imports this module to register the tasks) does without."""

from marketing_ai.ml import recommend
from workers import queues
from workers.models import ModelVersion, TaskRun
from workers.services import task_run_start
from workers.tracking import Progress, queued_task, tracked_task


def _trained(version: ModelVersion) -> dict:
    """What a training run reports: the version it registered and how it measured."""
    return {"model_version": version.pk, "version": version.version, "status": version.status,
            "metrics": version.metrics}  # fmt: skip


def _version(run: TaskRun) -> ModelVersion:
    return ModelVersion.objects.get(pk=run.params["model_version"])


def recommender_task(model: str):
    """The training task for `model`: sequential recommenders train on the gpu queue."""
    return train_sequential_recommender if model in recommend.SEQUENTIAL else train_recommender


@tracked_task(queue=queues.ML)
def train_recommender(run: TaskRun, progress: Progress) -> dict:
    """Params: model (dlae, ease, itemknn, als, popular), params (dict), holdout_days (int),
    repeat_purchases (bool: lists may hold products the customer already bought)."""
    return run_recommender_training(run, progress)


@tracked_task(queue=queues.GPU)
def train_sequential_recommender(run: TaskRun, progress: Progress) -> dict:
    """Params: model (sasrec), params (dict: epochs, max_len, hidden...), holdout_days (int),
    repeat_purchases (bool)."""
    return run_recommender_training(run, progress)


def run_recommender_training(run: TaskRun, progress: Progress) -> dict:
    """The body of both recommender tasks (ml and gpu queues): train, register, report."""
    from crm.services import recommendations

    version = recommendations.recommender_train(
        workspace=run.workspace,
        model=run.params.get("model", recommendations.DEFAULT_MODEL),
        params=run.params.get("params") or {},
        holdout_days=int(run.params.get("holdout_days", 30)),
        repeat_purchases=bool(run.params.get("repeat_purchases", False)),
        task_run=run,
        progress=progress,
    )
    return _trained(version)


@tracked_task(queue=queues.ML)
def write_recommendations(run: TaskRun, progress: Progress) -> dict:
    """Params: model_version (id). Rewrites every customer's list from that version."""
    from crm.services import recommendations

    return {
        "customers": recommendations.recommendations_write(version=_version(run), progress=progress)
    }


@tracked_task(queue=queues.ML)
def train_churn(run: TaskRun, progress: Progress) -> dict:
    """Params: horizon_days (int, default 90)."""
    from crm.services import churn

    version = churn.churn_train(
        workspace=run.workspace, horizon_days=int(run.params.get("horizon_days", 90)),
        task_run=run, progress=progress,
    )  # fmt: skip
    return _trained(version)


@tracked_task(queue=queues.ML)
def score_churn(run: TaskRun, progress: Progress) -> dict:
    """Params: model_version (id). Rewrites every customer's churn_risk from that version."""
    from crm.services import churn

    return {"customers": churn.churn_score(version=_version(run), progress=progress)}


@tracked_task(queue=queues.ML)
def train_clv(run: TaskRun, progress: Progress) -> dict:
    """Params: horizon_weeks (float, default 52), model ("auto" (default): the purchase model
    that best predicted the latest weeks; or bgnbd, pareto_nbd, pareto_nbd_covariates)."""
    from crm.services import clv

    version = clv.clv_train(
        workspace=run.workspace, horizon_weeks=float(run.params.get("horizon_weeks", 52)),
        model=str(run.params.get("model", "auto")), task_run=run, progress=progress,
    )  # fmt: skip
    return _trained(version)


@tracked_task(queue=queues.ML)
def score_clv(run: TaskRun, progress: Progress) -> dict:
    """Params: model_version (id). Rewrites every customer's clv_12m and p_alive."""
    from crm.services import clv

    return {"customers": clv.clv_score(version=_version(run), progress=progress)}


@queued_task(queue=queues.ML, acks_late=True, reject_on_worker_lost=True)
def retrain_nightly() -> int:
    """Beat: a new version of every active churn and CLV model, on the latest data
    (recommenders have their own nightly run)."""
    tasks = {"predict.churn": train_churn, "predict.clv": train_clv}
    started = 0
    for version in ModelVersion.objects.filter(
        family__in=list(tasks), status=ModelVersion.Status.ACTIVE
    ).select_related("workspace"):
        task_run_start(
            task=tasks[version.family], workspace=version.workspace, params=version.params
        )
        started += 1
    return started


@queued_task(queue=queues.ML, acks_late=True, reject_on_worker_lost=True)
def retrain_recommenders_nightly() -> int:
    """Beat: a new version of each workspace's active recommender, on yesterday's data too."""
    started = 0
    for version in ModelVersion.objects.filter(
        family__startswith="recommend.", status=ModelVersion.Status.ACTIVE
    ).select_related("workspace"):
        not_model_params = ("model", "popular", "repeat_purchases")
        params = {k: v for k, v in version.params.items() if k not in not_model_params}
        model = version.params.get("model", "ease")  # versions from before params named it
        task_run_start(
            task=recommender_task(model), workspace=version.workspace,
            params={"model": model, "params": params,
                    "repeat_purchases": bool(version.params.get("repeat_purchases"))},
        )  # fmt: skip
        started += 1
    return started
