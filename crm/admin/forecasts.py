"""The admin's *Forecasts* page (it stands in for the Forecast rows' change list): one series'
actuals, forecast and 80% band as a chart, what the next periods' forecasts are made of, the
products rising and slowing, drift alerts, how well the active version did on its backtest, and
*Run forecast now*. Everything on it is the workspace's own: the one chosen in the header's
switcher, or one of the user's picked on the page."""

from datetime import timedelta

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from crm import validation
from crm.admin.forecast_chart import forecast_chart
from crm.admin.runs import progress_bar
from crm.admin.scope import WorkspaceScopedAdmin, current_workspace, visible_workspaces
from crm.models import Forecast, ForecastTrend, Workspace
from crm.models.forecasts import Frequency, Level, Measure
from crm.selectors import forecasts as selectors
from crm.services.training import OTHER_TASKS, training_start
from workers.models import TaskRun

TASK = OTHER_TASKS["forecast"]
PARTS = [
    ("level", "usual level"),
    ("trend", "trend"),
    ("seasonality", "time of year"),
    ("holiday", "Christmas"),
    ("promotion", "campaigns"),
]
TRENDING = 15


def _workspace(request: HttpRequest, chosen) -> Workspace | None:
    """The workspace the page shows: `chosen` (an id from the page) if the user may see it, else
    the switcher's, else the user's first."""
    visible = visible_workspaces(request).order_by("name")
    if chosen not in (None, ""):
        try:
            return visible.filter(pk=validation.identifier(chosen)).first()
        except validation.Invalid:
            return None
    return current_workspace(request) or visible.first()


def backtest_sentences(metrics: dict, frequency: str) -> list[str]:
    """The version's backtest in words a marketer reads without knowing what MASE is."""
    prefix = "day_" if frequency == Frequency.DAY else ""
    unit = "days" if frequency == Frequency.DAY else "weeks"
    out = []
    origins = metrics.get(f"{prefix}origins")
    if origins:
        out.append(
            f"Checked on the latest {unit}: the model was refitted {int(origins)} times with "
            f"the later {unit} hidden from it, and its forecasts compared with what then sold."
        )
    mase = metrics.get(f"{prefix}mase")
    if isinstance(mase, int | float):
        if mase < 1:
            verdict = f"{(1 - mase):.0%} smaller than"
        else:
            verdict = f"{(mase - 1):.0%} larger than"
        out.append(
            f"Its typical error was {verdict} that of simply repeating last season's figure "
            f"(MASE {mase:.2f}; below 1 beats that simple rule)."
        )
    others = {
        k.removeprefix(f"{prefix}mase_"): v
        for k, v in metrics.items()
        if k.startswith(f"{prefix}mase_") and isinstance(v, int | float)
    }
    if others:
        best = min(others, key=others.get)
        out.append(
            f"For comparison, the best method tried on its own for every series on the same "
            f"{unit} ({best}) scored "
            f"{others[best]:.2f}; every method tried: "
            + ", ".join(f"{name} {value:.2f}" for name, value in sorted(others.items()))
            + "."
        )
    coverage = metrics.get(f"{prefix}coverage80")
    if isinstance(coverage, int | float):
        out.append(
            f"The 80% band held the actual figure {coverage:.0%} of the time (it should be "
            "close to 80%: much less means the band is too narrow to trust)."
        )
    seconds = metrics.get("seconds")
    series = metrics.get("series")
    if series and seconds:
        out.append(f"{int(series):,} series fitted in {seconds:.0f} s.")
    return out


def _part(name: str, value: float | None) -> str:
    if value is None:
        return "–"  # the model has no such part
    if name == "level":
        return f"{value:,.0f}"
    return f"{value:+,.0f}" if round(value) else "0"


def _reasons_rows(forecast: list[dict]) -> list[dict]:
    """Each period's forecast with its parts as text: the level as it is, the others as what
    they add or take away."""
    return [
        {**row, "parts": [(label, _part(name, row["reasons"].get(name))) for name, label in PARTS]}
        for row in forecast
    ]


# Below this much a period recently, a share of change says little (+4,000% of next to nothing).
SMALL_RECENT = 1.0


def _trend_row(trend: ForecastTrend, names: dict[str, str]) -> dict:
    small = abs(trend.recent) < SMALL_RECENT
    return {
        "key": trend.key,
        "name": names.get(trend.key, trend.key),
        "recent": trend.recent,
        "forecast": trend.forecast,
        "change": "new: next to nothing sold recently" if small else f"{trend.change:+.0%}",
        "band": "" if small else f"{trend.change_lower:+.0%} to {trend.change_upper:+.0%}",
    }


@admin.register(Forecast)
class ForecastAdmin(WorkspaceScopedAdmin):
    list_display = ["level", "key", "measure", "frequency", "period_start", "mean"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # forecasts come from forecast runs

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        # A run writes a new version of every forecast: it needs add_forecast.
        run = path("run/", self.guarded_view(self.run_view, "add"), name="crm_forecast_run")
        return [run, *super().get_urls()]

    def run_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """POST workspace=<id>: starts a forecast run of that workspace (one of the user's)."""
        target = reverse("admin:crm_forecast_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(target)
        workspace = _workspace(request, request.POST.get("workspace"))
        if workspace is None:
            messages.error(request, "Pick one of your workspaces.")
            return HttpResponseRedirect(target)
        # A second click while the first run works would only compute the same forecast twice.
        under_way = TaskRun.objects.filter(
            workspace=workspace,
            kind=OTHER_TASKS["forecast"],
            status__in=(TaskRun.Status.QUEUED, TaskRun.Status.RUNNING),
        ).exists()
        if under_way:
            messages.info(request, f"A forecast of {workspace.name} is already running: see below.")
        else:
            training_start(workspace=workspace, model="forecast", user=request.user)
            messages.success(request, f"Forecasting {workspace.name}: follow the run below.")
        return HttpResponseRedirect(f"{target}?workspace={workspace.pk}")

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)
        workspace = _workspace(request, request.GET.get("workspace"))
        choice = {
            "series": request.GET.get("series") or "total",
            "measure": request.GET.get("measure") or Measure.UNITS,
            "frequency": request.GET.get("frequency") or Frequency.WEEK,
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Forecasts",
            "workspace": workspace,
            "workspaces": visible_workspaces(request).order_by("name"),
            "choice": choice,
            "measures": Measure.values,
            "frequencies": Frequency.values,
            "can_run": self.user_may_run(request),
        }
        if workspace is not None:
            context.update(self.workspace_context(workspace, choice))
        return TemplateResponse(request, "admin/crm/forecast/page.html", context)

    def user_may_run(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.add_forecast")

    def workspace_context(self, workspace: Workspace, choice: dict) -> dict:
        version = selectors.active_version(workspace.pk)
        context: dict = {
            "version": version,
            "series_choices": selectors.series_choices(version),
            "runs": [
                (run, progress_bar(run))
                for run in TaskRun.objects.filter(workspace=workspace, kind=TASK)[:5]
            ],
        }
        try:
            data = selectors.forecast_series(workspace.pk, **choice)
        except selectors.SeriesError as exc:
            context["problem"] = f"{exc.field}: {exc}"
            return context
        context["data"] = data
        label = dict(item for items in context["series_choices"].values() for item in items).get(
            data["series"], data["series"]
        )
        context["series_label"] = label
        unit = "units" if data["measure"] == Measure.UNITS else "revenue"
        per = "week" if data["frequency"] == Frequency.WEEK else "day"
        context["chart"] = forecast_chart(
            data["history"], data["forecast"], title=f"{label}: {unit} per {per}"
        )
        context["reasons"] = _reasons_rows(data["forecast"])
        if data["version"]:
            origin = data["version"]["origin"]
            context["learned_until"] = origin + timedelta(
                days=selectors.PERIOD_DAYS[data["frequency"]] - 1
            )
        if version is None:
            return context
        context["backtest"] = backtest_sentences(version.metrics, data["frequency"])
        measure = data["measure"]
        rising = selectors.trending(
            workspace.pk, direction=ForecastTrend.Direction.RISING, measure=measure, limit=TRENDING
        )
        slowing = selectors.trending(
            workspace.pk, direction=ForecastTrend.Direction.SLOWING, measure=measure, limit=TRENDING
        )
        names = selectors.product_names(workspace.pk, [t.key for t in rising + slowing])
        context["rising"] = [_trend_row(t, names) for t in rising]
        context["slowing"] = [_trend_row(t, names) for t in slowing]
        alerts = selectors.recent_alerts(workspace.pk)
        alert_names = selectors.product_names(
            workspace.pk, [a.key for a in alerts if a.level == Level.PRODUCT]
        )
        context["alerts"] = [
            (
                a,
                alert_names.get(a.key, a.key) if a.level == Level.PRODUCT else a.key,
                "above" if a.actual > a.upper else "below",
            )
            for a in alerts
        ]
        return context
