"""Lifetime value on the platform: BG/NBD for purchases to come and whether the customer is still
active, Gamma-Gamma for what each purchase is worth; `clv_12m` and `p_alive` scores per customer."""

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.models import CustomerScore, Order, Workspace
from crm.services.churn import reference_time
from crm.services.scores import scores_upsert
from marketing_ai.ml import registry
from marketing_ai.ml.predict.clv import BetaGeoNBD, GammaGamma
from workers import services as run_services
from workers.models import ModelVersion, TaskRun

FAMILY = "predict.clv"
WEEK = 7 * 86400


def purchase_summary(workspace: Workspace, at: datetime) -> dict[str, np.ndarray]:
    """Per live customer with an order before `at`: x (repeat purchase days), t_x and T (weeks
    from the first purchase to the last one and to `at`), m (mean value of repeat days)."""
    days = (
        Order.objects.filter(
            workspace=workspace, kind=Order.Kind.ORDER, status=Order.Status.PLACED,
            customer__isnull=False, customer__erased_at__isnull=True, placed_at__lt=at,
        )
        .annotate(day=TruncDate("placed_at"))
        .values("customer_id", "day")
        .annotate(value=Sum("total"))
        .order_by("customer_id", "day")
        .values_list("customer_id", "day", "value")
    )  # fmt: skip
    by_customer: dict[int, list[tuple]] = {}
    for customer_id, day, value in days:
        by_customer.setdefault(customer_id, []).append((day, float(value)))
    ids, x, t_x, T, m = [], [], [], [], []
    at_day = at.date()
    for customer_id, visits in by_customer.items():
        first, last = visits[0][0], visits[-1][0]
        repeats = [v for _, v in visits[1:]]
        ids.append(customer_id)
        x.append(len(repeats))
        t_x.append((last - first).days / 7)
        T.append((at_day - first).days / 7)
        m.append(float(np.mean(repeats)) if repeats else 0.0)
    return {k: np.array(v, dtype=float) for k, v in
            {"ids": ids, "x": x, "t_x": t_x, "T": T, "m": m}.items()}  # fmt: skip


def clv_train(
    *,
    workspace: Workspace,
    horizon_weeks: float = 52.0,
    task_run: TaskRun | None = None,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
) -> ModelVersion:
    """Fits both models on everything up to the reference time. The metrics come from a refit
    on the history before the last `horizon_weeks / 4` weeks, predicting those weeks' purchases."""
    at = reference_time(workspace)
    check = horizon_weeks / 4
    progress(10, "checking on the latest weeks")
    before = purchase_summary(workspace, at - timedelta(weeks=check))
    after = purchase_summary(workspace, at)
    metrics: dict = {"horizon_weeks": horizon_weeks, "reference_time": at.isoformat()}
    if len(before["ids"]) >= 50:
        trial = BetaGeoNBD().fit(before["x"], before["t_x"], before["T"])
        expected = trial.expected_purchases(check, before["x"], before["t_x"], before["T"])
        later = dict(zip(after["ids"].astype(int), after["x"], strict=True))
        actual = np.array([later.get(int(pk), x) - x for pk, x in
                           zip(before["ids"], before["x"], strict=True)])  # fmt: skip
        metrics.update({
            "check_weeks": check, "check_customers": int(len(actual)),
            "check_actual": float(actual.sum()), "check_predicted": round(float(expected.sum()), 1),
            "check_mae": round(float(np.abs(expected - actual).mean()), 4),
        })  # fmt: skip
    progress(40, "fitting")
    data = after
    if len(data["ids"]) < 50:
        raise ValueError(f"only {len(data['ids'])} customers have bought: too few")
    frequency = BetaGeoNBD().fit(data["x"], data["t_x"], data["T"])
    value = GammaGamma().fit(data["x"], data["m"])
    metrics.update({
        "customers": int(len(data["ids"])),
        "bgnbd": {k: round(float(getattr(frequency, k)), 4) for k in ("r", "alpha", "a", "b")},
        "gamma_gamma": {k: round(float(getattr(value, k)), 6) for k in ("p", "q", "v")},
    })  # fmt: skip
    version = run_services.model_version_register(
        workspace=workspace,
        family=FAMILY,
        artifact={"bgnbd": frequency, "gg": value},
        metrics=metrics,
        params={"horizon_weeks": horizon_weeks},
        task_run=task_run,
    )
    if version.status == ModelVersion.Status.ACTIVE:
        clv_score(version=version, progress=lambda p, m: progress(60 + 0.4 * p, m))
    return version


def clv_score(
    *, version: ModelVersion, progress: Callable[[float, str], None] = lambda pct, msg: None
) -> int:
    """Writes `clv_12m` (expected value of the next horizon, in the shop's currency) and
    `p_alive` for every buying customer, each with the figures behind it."""
    models = registry.load(version.artifact_path)
    frequency, value = models["bgnbd"], models["gg"]
    horizon = float(version.params.get("horizon_weeks", 52.0))
    workspace = version.workspace
    data = purchase_summary(workspace, reference_time(workspace))
    purchases = frequency.expected_purchases(horizon, data["x"], data["t_x"], data["T"])
    alive = frequency.probability_alive(data["x"], data["t_x"], data["T"])
    spend = value.expected_value(data["x"], data["m"])
    now = timezone.now()
    scores = []
    for i, pk in enumerate(data["ids"].astype(int)):
        why = [
            {"feature": "expected_purchases", "value": round(float(purchases[i]), 3)},
            {"feature": "expected_order_value", "value": round(float(spend[i]), 2)},
            {"feature": "repeat_purchases", "value": int(data["x"][i])},
            {
                "feature": "weeks_since_last",
                "value": round(float(data["T"][i] - data["t_x"][i]), 1),
            },
        ]
        scores.append(
            CustomerScore(
                workspace=workspace,
                customer_id=pk,
                kind="clv_12m",
                value=round(float(purchases[i] * spend[i]), 2),
                model_version=version,
                reasons=why,
                computed_at=now,
            )
        )
        scores.append(CustomerScore(workspace=workspace, customer_id=pk, kind="p_alive",
                                    value=round(float(alive[i]), 4), model_version=version,
                                    reasons=why[2:], computed_at=now))  # fmt: skip
    scores_upsert(scores)
    progress(100, "scored")
    return len(data["ids"])
