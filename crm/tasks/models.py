"""Training and scoring: CPU work on the `ml` queue, sequential recommenders on `gpu` (CUDA in
bf16 where a node has one). The services are imported inside the task bodies: they load numpy
and scipy, which the web process (it imports this module to register the tasks) does without."""

from crm.services import training
from workers import queues
from workers.models import ModelVersion, TaskRun
from workers.runs import Progress, nightly_task, tracked_task


def _trained(version: ModelVersion) -> dict:
    """What a training run reports: the version it registered and how it measured."""
    return {
        "model_version": version.pk,
        "version": version.version,
        "status": version.status,
        "metrics": version.metrics,
    }


def _version(run: TaskRun) -> ModelVersion:
    return ModelVersion.objects.get(pk=run.params["model_version"])


@tracked_task(queue=queues.ML, time_limit=4 * 3600)
def train_recommender(run: TaskRun, progress: Progress) -> dict:
    """Params: model (dlae, ease, itemknn, als, popular), params (dict), holdout_days (int),
    repeat_purchases (bool: lists may hold products the customer already bought)."""
    return run_recommender_training(run, progress)


@tracked_task(queue=queues.GPU, time_limit=4 * 3600)
def train_sequential_recommender(run: TaskRun, progress: Progress) -> dict:
    """Params: model (sasrec), params (dict: epochs, max_len, hidden...), holdout_days (int),
    repeat_purchases (bool)."""
    return run_recommender_training(run, progress)


def run_recommender_training(run: TaskRun, progress: Progress) -> dict:
    """The body of both recommender tasks (ml and gpu queues): train, register, report."""
    # it brings numpy and scipy: loaded on the worker, kept out of the web process
    from crm.services import recommendations

    version = recommendations.recommender_train(
        workspace=run.workspace,
        model=run.params.get("model", training.DEFAULT_RECOMMENDER),
        params=run.params.get("params") or {},
        holdout_days=int(run.params.get("holdout_days", 30)),
        repeat_purchases=bool(run.params.get("repeat_purchases", False)),
        task_run=run,
        progress=progress,
    )
    return _trained(version)


@tracked_task(queue=queues.ML, time_limit=60 * 60)
def write_recommendations(run: TaskRun, progress: Progress) -> dict:
    """Params: model_version (id). Rewrites every customer's list from that version."""
    # it brings numpy and scipy: loaded on the worker, kept out of the web process
    from crm.services import recommendations

    return {
        "customers": recommendations.recommendations_write(version=_version(run), progress=progress)
    }


@tracked_task(queue=queues.ML, time_limit=2 * 3600)
def train_churn(run: TaskRun, progress: Progress) -> dict:
    """Params: horizon_days (int, default 90)."""
    # it brings numpy and scipy: loaded on the worker, kept out of the web process
    from crm.services import churn

    version = churn.churn_train(
        workspace=run.workspace,
        horizon_days=int(run.params.get("horizon_days", 90)),
        task_run=run,
        progress=progress,
    )
    return _trained(version)


@tracked_task(queue=queues.ML, time_limit=60 * 60)
def score_churn(run: TaskRun, progress: Progress) -> dict:
    """Params: model_version (id). Rewrites every customer's churn_risk from that version."""
    # it brings numpy and scipy: loaded on the worker, kept out of the web process
    from crm.services import churn

    return {"customers": churn.churn_score(version=_version(run), progress=progress)}


@tracked_task(queue=queues.ML, time_limit=2 * 3600)
def train_clv(run: TaskRun, progress: Progress) -> dict:
    """Params: horizon_weeks (float, default 52), model ("auto" (default): the purchase model
    that best predicted the latest weeks; or bgnbd, pareto_nbd, pareto_nbd_covariates)."""
    # it brings numpy and scipy: loaded on the worker, kept out of the web process
    from crm.services import clv

    version = clv.clv_train(
        workspace=run.workspace,
        horizon_weeks=float(run.params.get("horizon_weeks", 52)),
        model=str(run.params.get("model", "auto")),
        task_run=run,
        progress=progress,
    )
    return _trained(version)


@tracked_task(queue=queues.ML, time_limit=60 * 60)
def score_clv(run: TaskRun, progress: Progress) -> dict:
    """Params: model_version (id). Rewrites every customer's clv_12m and p_alive."""
    # it brings numpy and scipy: loaded on the worker, kept out of the web process
    from crm.services import clv

    return {"customers": clv.clv_score(version=_version(run), progress=progress)}


@tracked_task(queue=queues.ML, time_limit=60 * 60)
def send_time(run: TaskRun, progress: Progress) -> dict:
    """Params: days (int, default 365), conversion_events (list, default ["purchase"]).
    Rewrites every customer's best_hour score (their best local hour to receive a message)."""
    # it brings numpy and scipy: loaded on the worker, kept out of the web process
    from crm.services import send_time as send_times

    events = run.params.get("conversion_events") or ["purchase"]
    return send_times.best_hours_compute(
        workspace=run.workspace,
        days=int(run.params.get("days", 365)),
        conversion_events=[events] if isinstance(events, str) else [str(e) for e in events],
        progress=progress,
    )


@nightly_task(queue=queues.ML, time_limit=10 * 60, atomic=True)
def retrain_nightly() -> int:
    """Beat: a new version of every active churn and CLV model, on the latest data
    (recommenders have their own nightly run)."""
    return training.retraining_due(recommenders=False)


@nightly_task(queue=queues.ML, time_limit=10 * 60, atomic=True)
def retrain_recommenders_nightly() -> int:
    """Beat: a new version of each workspace's active recommender, on yesterday's data too."""
    return training.retraining_due(recommenders=True)


@nightly_task(queue=queues.ML, time_limit=10 * 60, atomic=True)
def send_time_nightly() -> int:
    """Beat: each workspace's best hours again, with yesterday's engagement in them."""
    return training.send_time_due()


FORECAST_OPTIONS = ("horizon", "day_horizon", "top_products", "top_countries", "n_groups",
                    "origins", "step")  # fmt: skip


@tracked_task(queue=queues.ML, time_limit=2 * 3600)
def forecast(run: TaskRun, progress: Progress) -> dict:
    """Params (all optional): horizon (weeks, default 8), day_horizon (days, default 28; 0: no
    daily forecast), top_products (500), top_countries (5), n_groups (20), origins (4) and step
    (4): the backtest's. Forecasts every series from the end of the workspace's data and makes
    the new version active."""
    # it brings pandas, statsforecast and LightGBM: loaded on the worker, kept out of the web
    from crm.services import forecasts

    options = {k: int(run.params[k]) for k in FORECAST_OPTIONS if k in run.params}
    version = forecasts.forecast_run(
        workspace=run.workspace, task_run=run, progress=progress, **options
    )
    return {**_trained(version), "origin": version.params.get("origin")}


@nightly_task(queue=queues.ML, time_limit=10 * 60, atomic=True)
def forecast_nightly() -> int:
    """Beat: every workspace with orders forecast again from its latest data."""
    return training.forecast_due()
