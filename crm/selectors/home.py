"""The admin home page's reads for one workspace: sales by week, the audience, the models, recent
task runs and what needs attention, as plain data.

Every read is bounded for a workspace of a million customers and ten million events: sales come
from the orders of the 26 weeks up to the workspace's latest order (the (workspace, placed_at)
index), runs and versions from their few latest rows, and the counts that must scan a
workspace's customers are kept in the cache for CACHE_SECONDS, so only the first view in that
time pays for them. The week window ends at the latest order, not today, so a historical data
set (the demo's 2009-2011 shop) shows its sales.
"""

import logging
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from crm.models import Consent, Customer, Order, Workspace
from crm.support.models import Conversation
from workers.models import ModelVersion, TaskRun

logger = logging.getLogger(__name__)

WEEKS = 26
CACHE_SECONDS = 300
RECENT_RUNS = 8
FAILED_WITHIN = timedelta(days=7)


def cached(key: str, compute, seconds: int = CACHE_SECONDS) -> Any:
    """compute() kept in the cache under `key` for `seconds`; with the cache (Redis) down the
    page is computed each time instead of failing."""
    try:
        hit = cache.get(key)
    except Exception as exc:  # noqa: BLE001  (any cache failure: compute it)
        logger.warning("home page cache unreadable: %s", exc)
        return compute()
    if hit is not None:
        return hit
    value = compute()
    try:
        cache.set(key, value, seconds)
    except Exception as exc:  # noqa: BLE001
        logger.warning("home page cache unwritable: %s", exc)
    return value


def cache_key(workspace: Workspace, name: str) -> str:
    """The cache key of one of `workspace`'s home page figures; the workspace's creation time
    is in it so a workspace made again under a used id (a restored database, a test) does not
    read its predecessor's figures."""
    return f"home:{name}:{workspace.pk}:{workspace.created_at.timestamp():.6f}"


def sales_by_week(*, workspace_id: int) -> list[dict]:
    """[{"week": date (Monday), "revenue": float, "orders": int}] for the WEEKS weeks up to the
    workspace's latest order, empty weeks included as zeros; [] with no orders."""
    placed = Order.objects.filter(
        workspace_id=workspace_id, kind=Order.Kind.ORDER, status=Order.Status.PLACED
    )
    last = placed.aggregate(at=Max("placed_at"))["at"]
    if last is None:
        return []
    # Weeks as TruncWeek cuts them: Mondays in the current time zone.
    local = timezone.localtime(last)
    last_week = local.date() - timedelta(days=local.weekday())
    first_week = last_week - timedelta(weeks=WEEKS - 1)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=local.weekday(), weeks=WEEKS - 1
    )
    rows = (
        placed.filter(placed_at__gte=start, placed_at__lte=last)
        .annotate(week=TruncWeek("placed_at"))
        .values("week")
        .annotate(revenue=Sum("total"), orders=Count("id"))
    )
    by_week = {}
    for row in rows:
        week = row["week"].date() if hasattr(row["week"], "date") else row["week"]
        by_week[week] = row
    out = []
    for i in range(WEEKS):
        week = first_week + timedelta(weeks=i)
        row = by_week.get(week)
        out.append(
            {
                "week": week,
                "revenue": float(row["revenue"] or 0) if row else 0.0,
                "orders": int(row["orders"]) if row else 0,
            }
        )
    return out


def audience(*, workspace_id: int) -> dict:
    """{"customers", "new_30d", "subscribers" (e-mail consent given)} of live customers."""
    live = Customer.objects.filter(workspace_id=workspace_id, erased_at__isnull=True)
    since = timezone.now() - timedelta(days=30)
    return {
        "customers": live.count(),
        "new_30d": live.filter(created_at__gte=since).count(),
        "subscribers": Consent.objects.filter(
            customer__workspace_id=workspace_id,
            customer__erased_at__isnull=True,
            channel="email",
            status=Consent.Status.SUBSCRIBED,
        ).count(),
    }


# Each family's headline figure of quality, in the order looked for (names as training records
# them in ModelVersion.metrics; "@k" stands for any cut-off).
QUALITY = ("auc", "recall@k", "ndcg@k", "qini", "check_mae", "wape", "mase")


def quality(metrics: dict) -> tuple[str, float] | None:
    """The version's headline (name, value) from its metrics, or None."""
    for name in QUALITY:
        if name.endswith("@k"):
            found = [k for k in metrics if k.startswith(name[:-1])]
            name = found[0] if found else name
        value = metrics.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return name, float(value)
    return None


def models(*, workspace_id: int) -> list[dict]:
    """The active version of each model family: {"family", "version", "trained_at",
    "quality": (name, value) or None}, by family."""
    rows = (
        ModelVersion.objects.filter(workspace_id=workspace_id, status=ModelVersion.Status.ACTIVE)
        .order_by("family", "-version")
        .values("family", "version", "created_at", "metrics")
    )
    seen, out = set(), []
    for row in rows:
        if row["family"] in seen:
            continue
        seen.add(row["family"])
        out.append(
            {
                "family": row["family"],
                "version": row["version"],
                "trained_at": row["created_at"],
                "quality": quality(row["metrics"] or {}),
            }
        )
    return out


RUN_VALUES = ("id", "kind", "status", "progress", "message", "created_at", "finished_at")


def recent_runs(*, workspace_id: int) -> list[dict]:
    """The workspace's latest task runs, newest first."""
    return list(
        TaskRun.objects.filter(workspace_id=workspace_id)
        .order_by("-created_at")
        .values(*RUN_VALUES)[:RECENT_RUNS]
    )


def attention(*, workspace_id: int) -> dict:
    """What staff should look at: {"failed_runs": [run] of the last week (5 at most, with
    "failed_count" of all), "waiting_chats": count of chats waiting for staff}."""
    failed = TaskRun.objects.filter(
        workspace_id=workspace_id,
        status=TaskRun.Status.FAILED,
        created_at__gte=timezone.now() - FAILED_WITHIN,
    ).order_by("-created_at")
    return {
        "failed_runs": list(failed.values(*RUN_VALUES, "error")[:5]),
        "failed_count": failed.count(),
        "waiting_chats": Conversation.objects.filter(
            workspace_id=workspace_id, status=Conversation.Status.WAITING
        ).count(),
    }


def home(*, workspace: Workspace) -> dict:
    """Everything the home page shows for `workspace` (its campaigns come from the campaigns
    app's own section)."""
    pk = workspace.pk
    return {
        "workspace": {"id": pk, "name": workspace.name},
        "sales": cached(cache_key(workspace, "sales"), lambda: sales_by_week(workspace_id=pk)),
        "audience": cached(cache_key(workspace, "audience"), lambda: audience(workspace_id=pk)),
        "models": models(workspace_id=pk),
        "runs": recent_runs(workspace_id=pk),
        "attention": attention(workspace_id=pk),
    }


def sales_totals(sales: list[dict]) -> dict:
    """The window's revenue and orders, and the last 4 weeks against the 4 before."""
    revenue = sum(w["revenue"] for w in sales)
    orders = sum(w["orders"] for w in sales)
    recent = sum(w["revenue"] for w in sales[-4:])
    before = sum(w["revenue"] for w in sales[-8:-4])
    change = (recent - before) / before if before else None
    return {"revenue": revenue, "orders": orders, "recent_change": change}
