"""The admin home page of the chosen workspace (crm.admin_site draws it as the index): sales by
week, the audience, the models and their quality, recent task runs and what needs attention,
with charts; other apps add their sections (campaigns: campaigns and journeys with their
results, paused sends) through home_section without crm importing them."""

from collections.abc import Callable

from django.http import HttpRequest
from django.urls import reverse

from crm.admin.home_charts import MUTED, hbars, week_bars
from crm.admin.scope import current_workspace, user_workspaces
from crm.admin_site import show_home
from crm.models import Workspace
from crm.selectors import home as home_selectors

# Sections other apps add to the home page: each is called with the request and the workspace
# and answers {"html": str, "attention": [{"text", "url"}]} (either may be empty), or None.
HOME_SECTIONS: list[Callable[[HttpRequest, Workspace], dict | None]] = []


def home_section(section: Callable[[HttpRequest, Workspace], dict | None]):
    """Registers `section` (a decorator) on every workspace's home page, in the order
    registered."""
    HOME_SECTIONS.append(section)
    return section


def _workspace(request: HttpRequest) -> Workspace | None:
    """The switcher's workspace, or the user's only one."""
    chosen = current_workspace(request)
    if chosen is not None:
        return chosen
    mine = list(user_workspaces(request)[:2])
    return mine[0] if len(mine) == 1 else None


def _charts(data: dict) -> dict:
    """SVG strings (crm.admin.home_charts escapes what they hold); the template marks them
    safe, as the forecast page does its chart."""
    sales = data["sales"]
    weeks = [w["week"] for w in sales]
    audience = data["audience"]
    customers = audience["customers"] or 1
    return {
        "revenue": week_bars(
            weeks, [w["revenue"] for w in sales], title="Revenue by week", css="revenue"
        ),
        "orders": week_bars(
            weeks,
            [float(w["orders"]) for w in sales],
            title="Orders by week",
            colour=MUTED,
            css="orders",
        ),
        "audience": hbars(
            [
                ("customers", 1.0, f"{audience['customers']:,}"),
                (
                    "e-mail subscribers",
                    audience["subscribers"] / customers,
                    f"{audience['subscribers']:,}",
                ),
                ("new in 30 days", audience["new_30d"] / customers, f"{audience['new_30d']:,}"),
            ],
            title="Audience",
            css="audience",
        ),
    }


def home_context(request: HttpRequest) -> dict:
    """The home page's template context: {"home": plain data and charts, or None with
    "choose" listing the workspaces to pick from}."""
    workspace = _workspace(request)
    if workspace is None:
        return {
            "home": None,
            "choose": [{"id": w.pk, "name": w.name} for w in user_workspaces(request)[:50]],
        }
    data = home_selectors.home(workspace=workspace)
    sections, attention = [], []
    for section in HOME_SECTIONS:
        shown = section(request, workspace)
        if shown:
            if shown.get("html"):
                sections.append(shown["html"])  # rendered by its template, escaped there
            attention.extend(shown.get("attention") or [])
    runs_url = reverse("admin:workers_taskrun_changelist")
    if data["attention"]["failed_count"]:
        n = data["attention"]["failed_count"]
        attention.append(
            {
                "text": f"{n} task run{'' if n == 1 else 's'} failed in the last 7 days",
                "url": f"{runs_url}?status__exact=failed",
            }
        )
    if data["attention"]["waiting_chats"]:
        n = data["attention"]["waiting_chats"]
        attention.append(
            {
                "text": f"{n} chat{'' if n == 1 else 's'} waiting for staff",
                "url": reverse("admin:crm_conversation_changelist") + "?status__exact=waiting",
            }
        )
    return {
        "home": {
            **data,
            "totals": home_selectors.sales_totals(data["sales"]),
            "charts": _charts(data),
            "sections": sections,
            "needs_attention": attention,
            "runs_url": runs_url,
        }
    }


show_home(home_context)
