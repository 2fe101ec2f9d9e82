"""Training an uplift model on the ledger (uplift_data), registering it as `uplift.<goal>`, and
scoring every customer with it; the ready-made segments that read the scores.

Measured honestly: a quarter of the customers (all their rows) is held out, a model fitted on
the rest ranks them, and its Qini coefficient and uplift in the top 30% on them, with bootstrap
95% intervals, are the version's metrics; then the model is fitted on everyone and registered.
"""

import math
from collections.abc import Callable

import numpy as np
from django.utils import timezone

from campaigns.services import uplift
from campaigns.services.uplift_data import FEATURES, features_at, training_set
from crm.models import Customer, CustomerScore, Segment, Workspace
from crm.services.churn import reference_time
from crm.services.scores import scores_upsert
from crm.services.segments import segment_refresh, segment_save
from marketing_ai.ml import registry
from marketing_ai.ml.uplift import metrics
from workers import services as run_services
from workers.models import ModelVersion, TaskRun

HELD_OUT = 0.25
SCORE_BATCH = 5000


def _held_out_customers(customer_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """A mask over rows: every row of a random quarter of the customers. By customer, not by
    row, so nobody is learned from in one campaign and judged on in another."""
    unique = np.unique(customer_ids)
    rng = np.random.default_rng(seed)
    held = unique[rng.random(len(unique)) < HELD_OUT]
    return np.isin(customer_ids, held)


def _finite(value: float) -> float | None:
    """Rounded, or None for NaN (uplift at k with one group only in the top k): a JSON column
    on PostgreSQL refuses NaN."""
    return None if math.isnan(value) else round(float(value), 4)


def _interval(value: metrics.Interval) -> tuple[float | None, list[float | None]]:
    return _finite(value.value), [_finite(value.low), _finite(value.high)]


def uplift_train(
    *,
    workspace: Workspace,
    goal: str,
    task_run: TaskRun | None = None,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
) -> ModelVersion:
    """Fits `goal`'s uplift model on the workspace's randomised sends and registers it (active
    when none is); an active version then scores every customer. Raises UpliftError when the
    ledger holds too little to learn from."""
    from marketing_ai.ml.uplift.learners import fit_uplift  # LightGBM: the worker only

    problem = uplift.goal_problem(goal)
    if problem:
        raise uplift.UpliftError(problem)
    if task_run is not None:
        # A run retried after its worker died (the sweeper requeues it): the version it
        # registered stands; finish what may have been cut short (its scores) instead of
        # registering a second one.
        done = ModelVersion.objects.filter(
            task_run=task_run, family=uplift.family(goal), workspace=workspace
        ).first()
        if done is not None:
            if done.status == ModelVersion.Status.ACTIVE:
                uplift_score(version=done, progress=progress)
            return done
    progress(5, "reading the send ledger")
    data = training_set(workspace=workspace, goal=goal)
    counts = data.counts()
    if not counts["rows_treated"] or not counts["rows_control"]:
        raise uplift.UpliftError(
            f"no sent campaign with a holdout and a closed attribution window for the goal "
            f"{goal!r} yet ({counts['rows_treated']} sent, {counts['rows_control']} held out)"
        )
    progress(20, f"evaluating on {counts['rows']:,} sends")
    held = _held_out_customers(data.customer_ids)
    try:
        trial = fit_uplift(
            data.X[~held], data.treated[~held], data.y[~held], feature_names=FEATURES, seed=0
        )
        score = trial.predict(data.X[held])
        y, t = data.y[held], data.treated[held]
        # normalised to the best ordering (scikit-uplift's): bounded by 1, where causalml's
        # (divided by the curve's end) blows up when a resample's end nears 0
        qini = metrics.with_interval(
            metrics.qini_coefficient, y, t, score, rounds=200, seed=0, normalise="perfect"
        )
        at_30 = metrics.with_interval(metrics.uplift_at_k, y, t, score, rounds=200, seed=0, k=0.3)
        progress(55, "fitting on every send")
        model = fit_uplift(data.X, data.treated, data.y, feature_names=FEATURES, seed=0)
    except ValueError as exc:  # too few rows in a treatment x outcome cell
        raise uplift.UpliftError(str(exc)) from None
    qini_value, qini_ci = _interval(qini)
    at_30_value, at_30_ci = _interval(at_30)
    control_rate = counts["conversions_control"] / counts["rows_control"]
    version = run_services.model_version_register(
        workspace=workspace,
        family=uplift.family(goal),
        artifact=model,
        metrics={
            "qini": qini_value,
            "qini_ci95": qini_ci,
            "qini_normalised": "to the best ordering (scikit-uplift's qini_auc_score)",
            "learner": model.learner,
            "rows_treated": counts["rows_treated"],
            "rows_control": counts["rows_control"],
            "uplift_at_30": at_30_value,
            "uplift_at_30_ci95": at_30_ci,
            "measured_on": "a quarter of the customers held out, model fitted on the rest",
            "held_out_rows": int(held.sum()),
            "validation_qini_by_learner": model.validation,
            "explainer_r2": _finite(model.explainer_r2),
            "conversion_rate_treated": round(
                counts["conversions_treated"] / counts["rows_treated"], 5
            ),
            "conversion_rate_control": round(control_rate, 5),
            **{k: v for k, v in counts.items() if k not in ("rows_treated", "rows_control")},
        },
        params={"goal": goal, "features": FEATURES},
        task_run=task_run,
    )
    if version.status == ModelVersion.Status.ACTIVE:
        uplift_score(version=version, progress=lambda p, m: progress(65 + 0.35 * p, m))
    return version


def uplift_score(
    *, version: ModelVersion, progress: Callable[[float, str], None] = lambda pct, msg: None
) -> int:
    """Writes every live customer's `uplift.<goal>` (with reasons), `.if_sent` and `.if_not`
    from `version`, features as of now (or the day after a historical data set's last order),
    then the goal's segments; returns how many customers were scored."""
    model = registry.load(version.artifact_path)
    workspace, goal = version.workspace, version.params["goal"]
    kind = uplift.score_kind(goal)
    if_sent_kind, if_not_kind = uplift.outcome_kinds(goal)
    at = reference_time(workspace)
    ids = np.array(
        Customer.objects.filter(workspace=workspace, erased_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True),
        dtype=np.int64,
    )
    for start in range(0, len(ids), SCORE_BATCH):
        batch = ids[start : start + SCORE_BATCH]
        X = features_at(workspace.pk, batch, [at] * len(batch))
        gain, (if_sent, if_not) = model.predict(X), model.outcomes(X)
        reasons = model.reasons(X, top=3)
        now = timezone.now()

        def row(pk, kind_, value, why=(), now=now):
            return CustomerScore(
                workspace=workspace,
                customer_id=int(pk),
                kind=kind_,
                value=round(float(value), 5),
                model_version=version,
                reasons=list(why),
                computed_at=now,
            )

        scores_upsert(
            [row(pk, kind, g, why) for pk, g, why in zip(batch, gain, reasons, strict=True)]
            + [row(pk, if_sent_kind, p) for pk, p in zip(batch, if_sent, strict=True)]
            + [row(pk, if_not_kind, p) for pk, p in zip(batch, if_not, strict=True)]
        )
        progress(90 * (start + len(batch)) / len(ids), f"scored {start + len(batch):,}")
    uplift_segments_save(workspace=workspace, goal=goal, version=version)
    progress(100, "scored")
    return len(ids)


def segment_thresholds(version: ModelVersion) -> dict:
    """The cut-offs of the ready-made segments, from what the version was trained on:

    - `clear`: an uplift is "clearly" above (or below) zero past a tenth of the base rate
      (the conversion rate of those held out of the sends), and at least 0.1 point: a message
      that adds a tenth to what would have happened anyway, the smallest gain worth a send;
    - `high`: a response is "high" at the base rate or above: those who convert at least as
      often as the average customer does without the message.
    """
    base = float(version.metrics.get("conversion_rate_control") or 0)
    return {"clear": round(max(0.001, 0.1 * base), 5), "high": round(base, 5)}


def uplift_segment_rules(goal: str, clear: float, high: float) -> dict[str, tuple[dict, str]]:
    """name -> (rules, description) of the four segments; they partition the scored customers
    (ties at a threshold go to the quiet side)."""
    kind = uplift.score_kind(goal)
    _, if_not = uplift.outcome_kinds(goal)
    flat = [
        {"score": kind, "op": "gte", "value": -clear},
        {"score": kind, "op": "lte", "value": clear},
    ]
    return {
        "persuadables": (
            {"score": kind, "op": "gt", "value": clear},
            f"the message adds more than {clear:.2%} to their chance of {goal}",
        ),
        "sure things": (
            {"all": [*flat, {"score": if_not, "op": "gte", "value": high}]},
            f"{goal} at {high:.2%} or more without the message, and it changes that little",
        ),
        "lost causes": (
            {"all": [*flat, {"score": if_not, "op": "lt", "value": high}]},
            f"{goal} below {high:.2%} either way: the message changes little",
        ),
        "do-not-disturbs": (
            {"score": kind, "op": "lt", "value": -clear},
            f"the message takes more than {clear:.2%} off their chance of {goal}",
        ),
    }


def segment_name(goal: str, group: str) -> str:
    return f"Uplift ({goal}): {group}"


def uplift_segments_save(*, workspace: Workspace, goal: str, version: ModelVersion) -> list:
    """Creates or updates the four ready-made segments of `goal` with `version`'s thresholds
    and refreshes their members; returns the segments."""
    thresholds = segment_thresholds(version)
    saved = []
    for group, (rules, why) in uplift_segment_rules(goal, **thresholds).items():
        name = segment_name(goal, group)
        segment = Segment.objects.filter(workspace=workspace, name=name).first()
        segment = segment_save(
            workspace=workspace,
            name=name,
            rules=rules,
            description=f"{why} (uplift model v{version.version}; ready-made, rewritten by "
            "each scoring)",
            segment=segment,
        )
        segment_refresh(segment=segment)
        saved.append(segment)
    return saved
