"""Lifetime value on the platform: a purchase model for purchases to come and whether the customer
is still active (BG/NBD, Pareto/NBD, or Pareto/NBD with what the first order said about the
customer), Gamma-Gamma for what each purchase is worth; `clv_12m` and `p_alive` per customer.

With `model="auto"` (the default) every purchase model is refitted on the history before the
last weeks and the one that predicted those weeks best (per-customer MAE) is kept; the version's
metrics list each one's check figures, so staff see why."""

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from crm.models import CustomerScore, Order, OrderLine, Workspace
from crm.services.churn import reference_time
from crm.services.scores import scores_upsert
from marketing_ai.ml import registry
from marketing_ai.ml.predict.clv import BetaGeoNBD, GammaGamma, ParetoNBD, ParetoNBDCovariates
from workers import services as run_services
from workers.models import ModelVersion, TaskRun

FAMILY = "predict.clv"
WEEK = 7 * 86400
# Purchase models, in the order `auto` prefers them on a tie.
MODELS = ("bgnbd", "pareto_nbd", "pareto_nbd_covariates")
CHOICES = ("auto", *MODELS)


def purchase_summary(workspace: Workspace, at: datetime) -> dict[str, np.ndarray]:
    """Per live customer with an order before `at`: x (repeat purchase days), t_x and T (weeks
    from the first purchase to the last one and to `at`), m (mean value of repeat days), and
    what the first day's orders said: z = [log(1 + value), log(1 + items)]."""
    days = (
        Order.objects.filter(**_placed(workspace, at))
        .annotate(day=TruncDate("placed_at"))
        .values("customer_id", "day")
        .annotate(value=Sum("total"))
        .order_by("customer_id", "day")
        .values_list("customer_id", "day", "value")
    )
    by_customer: dict[int, list[tuple]] = {}
    for customer_id, day, value in days:
        by_customer.setdefault(customer_id, []).append((day, float(value)))
    items = _items_by_day(workspace, at)
    ids, x, t_x, T, m, z = [], [], [], [], [], []
    at_day = at.date()
    for customer_id, visits in by_customer.items():
        first, last = visits[0][0], visits[-1][0]
        repeats = [v for _, v in visits[1:]]
        ids.append(customer_id)
        x.append(len(repeats))
        t_x.append((last - first).days / 7)
        T.append((at_day - first).days / 7)
        m.append(float(np.mean(repeats)) if repeats else 0.0)
        z.append(
            [np.log1p(max(visits[0][1], 0.0)), np.log1p(max(items.get((customer_id, first), 0), 0))]
        )
    summary = {
        k: np.array(v, dtype=float)
        for k, v in {"ids": ids, "x": x, "t_x": t_x, "T": T, "m": m}.items()
    }
    summary["z"] = np.array(z, dtype=float).reshape(len(ids), 2)
    return summary


def _placed(workspace: Workspace, at: datetime, prefix: str = "") -> dict:
    """Filters for the orders that count: placed before `at` by customers not erased."""
    return {
        f"{prefix}{k}": v
        for k, v in {
            "workspace": workspace,
            "kind": Order.Kind.ORDER,
            "status": Order.Status.PLACED,
            "customer__isnull": False,
            "customer__erased_at__isnull": True,
            "placed_at__lt": at,
        }.items()
    }


def _items_by_day(workspace: Workspace, at: datetime) -> dict[tuple, int]:
    """Units bought per (customer, day), from the order lines (returns not counted)."""
    lines = (
        OrderLine.objects.filter(**_placed(workspace, at, "order__"), quantity__gt=0)
        .annotate(day=TruncDate("order__placed_at"))
        .values("order__customer_id", "day")
        .annotate(units=Sum("quantity"))
        .values_list("order__customer_id", "day", "units")
    )
    return {(customer_id, day): units for customer_id, day, units in lines}


def _fit(name: str, data: dict, fitted: dict | None = None):
    """`fitted`: models already fitted to `data` by name (the covariate model starts from the
    plain Pareto/NBD's estimate)."""
    x, t_x, T = data["x"], data["t_x"], data["T"]
    if name == "bgnbd":
        return BetaGeoNBD().fit(x, t_x, T)
    if name == "pareto_nbd":
        return ParetoNBD().fit(x, t_x, T)
    return ParetoNBDCovariates().fit(x, t_x, T, data["z"], (fitted or {}).get("pareto_nbd"))


def _predict(model, weeks: float, data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases in the next `weeks` and probability alive, per customer."""
    args = (data["x"], data["t_x"], data["T"])
    if isinstance(model, ParetoNBDCovariates):
        args = (*args, data["z"])
    return model.expected_purchases(weeks, *args), model.probability_alive(*args)


def clv_train(
    *,
    workspace: Workspace,
    horizon_weeks: float = 52.0,
    model: str = "auto",
    task_run: TaskRun | None = None,
    progress: Callable[[float, str], None] = lambda pct, msg: None,
) -> ModelVersion:
    """Fits the purchase model (`model`, or with "auto" the one that best predicted the check
    weeks) and Gamma-Gamma on everything up to the reference time. The check: a refit on the
    history before the last `horizon_weeks / 4` weeks, predicting those weeks' purchases."""
    if model not in CHOICES:
        raise ValueError(f"model must be one of {', '.join(CHOICES)}, not {model!r}")
    requested, at = model, reference_time(workspace)
    check = horizon_weeks / 4
    progress(10, "checking on the latest weeks")
    before = purchase_summary(workspace, at - timedelta(weeks=check))
    after = purchase_summary(workspace, at)
    metrics: dict = {"horizon_weeks": horizon_weeks, "reference_time": at.isoformat()}
    candidates = MODELS if model == "auto" else (model,)
    if len(before["ids"]) >= 50:
        later = dict(zip(after["ids"].astype(int), after["x"], strict=True))
        actual = np.array(
            [later.get(int(pk), x) - x for pk, x in zip(before["ids"], before["x"], strict=True)]
        )
        metrics.update(
            {
                "check_weeks": check,
                "check_customers": int(len(actual)),
                "check_actual": float(actual.sum()),
            }
        )
        checked, fitted = {}, {}
        for i, name in enumerate(candidates):
            progress(10 + 30 * i / len(candidates), f"checking {name} on the latest weeks")
            fitted[name] = _fit(name, before, fitted)
            expected, _ = _predict(fitted[name], check, before)
            checked[name] = {
                "check_predicted": round(float(expected.sum()), 1),
                "check_mae": round(float(np.abs(expected - actual).mean()), 4),
            }
        if model == "auto":
            model = min(candidates, key=lambda name: checked[name]["check_mae"])
        metrics.update(checked[model])
        metrics["candidates"] = checked
    elif model == "auto":
        model = "bgnbd"  # too little history to check: the simplest model
    progress(40, f"fitting {model}")
    data = after
    if len(data["ids"]) < 50:
        raise ValueError(f"only {len(data['ids'])} customers have bought: too few")
    frequency = _fit(model, data)
    value = GammaGamma().fit(data["x"], data["m"])
    metrics.update(
        {
            "model": model,
            "customers": int(len(data["ids"])),
            "gamma_gamma": {k: round(float(getattr(value, k)), 6) for k in ("p", "q", "v")},
        }
    )
    if isinstance(frequency, BetaGeoNBD):
        metrics["bgnbd"] = {
            k: round(float(getattr(frequency, k)), 4) for k in ("r", "alpha", "a", "b")
        }
    else:
        base = frequency.base if isinstance(frequency, ParetoNBDCovariates) else frequency
        metrics["pareto_nbd"] = {
            k: round(float(getattr(base, k)), 4) for k in ("r", "alpha", "s", "beta")
        }
    if isinstance(frequency, ParetoNBDCovariates):
        metrics["first_order_effects"] = {
            "purchase": [round(float(v), 4) for v in frequency.purchase_effects],
            "dropout": [round(float(v), 4) for v in frequency.dropout_effects],
        }
    version = run_services.model_version_register(
        workspace=workspace,
        family=FAMILY,
        artifact={"frequency": frequency, "gg": value},
        metrics=metrics,
        params={"horizon_weeks": horizon_weeks, "model": requested},  # nightly: choose again
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
    frequency = models.get("frequency") or models["bgnbd"]  # "bgnbd": versions before the choice
    value = models["gg"]
    horizon = float(version.params.get("horizon_weeks", 52.0))
    workspace = version.workspace
    data = purchase_summary(workspace, reference_time(workspace))
    purchases, alive = _predict(frequency, horizon, data)
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
        scores.append(
            CustomerScore(
                workspace=workspace,
                customer_id=pk,
                kind="p_alive",
                value=round(float(alive[i]), 4),
                model_version=version,
                reasons=why[2:],
                computed_at=now,
            )
        )
    scores_upsert(scores)
    progress(100, "scored")
    return len(data["ids"])
