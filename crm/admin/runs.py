"""Task runs and model versions in the admin, scoped to the user's workspaces (and the
platform's own runs), with *Train model*, which starts crm.services.training's runs."""

from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from crm import validation
from crm.admin.scope import ScopedListFilters, user_workspaces, visible_workspaces
from crm.services import training
from workers import queues, services
from workers.admin_access import ModelPermissionAdmin, user_has
from workers.models import ModelVersion, TaskRun, slot_of


def progress_bar(run: TaskRun) -> str:
    # data-run lets the changelist script poll /api/v1/tasks/<id> and move the bar live.
    active = "1" if run.status in (TaskRun.Status.QUEUED, TaskRun.Status.RUNNING) else ""
    return format_html(
        '<div class="taskrun-progress" data-run="{}" data-active="{}">'
        '<progress max="100" value="{}"></progress> <span>{}%</span></div>',
        run.pk,
        active,
        run.progress,
        run.progress,
    )


@admin.register(TaskRun)
class TaskRunAdmin(ScopedListFilters, ModelPermissionAdmin):
    list_display = ["kind", "status", "bar", "message", "queue", "created_at", "duration"]
    list_filter = ["status", "queue", "kind"]
    search_fields = ["kind", "message", "id"]
    date_hierarchy = "created_at"
    actions = ["cancel_runs"]
    readonly_fields = [
        "id",
        "kind",
        "queue",
        "status",
        "bar",
        "message",
        "params",
        "result",
        "error",
        "attempts",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
    ]
    exclude = ["progress"]
    change_list_template = "admin/workers/taskrun/change_list.html"
    change_form_template = "admin/workers/taskrun/change_form.html"

    def get_queryset(self, request):
        runs = super().get_queryset(request)
        if request.user.is_superuser:
            return runs
        # Staff see their workspaces' runs and the platform's own (self-checks).
        return runs.filter(Q(workspace__in=visible_workspaces(request)) | Q(workspace=None))

    @admin.display(description="progress", ordering="progress")
    def bar(self, run: TaskRun) -> str:
        return progress_bar(run)

    @admin.display(description="duration")
    def duration(self, run: TaskRun) -> str:
        seconds = run.duration_seconds
        return "" if seconds is None else f"{seconds:.1f} s"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are started by the features that own them, never typed in

    def has_change_permission(self, request: HttpRequest, obj: TaskRun | None = None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        # The form stays read-only for everyone; cancelling is what change_taskrun grants.
        return user_has(request, self.opts, "change")

    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel_runs(self, request: HttpRequest, queryset) -> None:
        cancelled = sum(services.task_run_cancel(run=run) for run in queryset)
        self.message_user(request, f"Cancelled {cancelled} run(s).")

    def get_urls(self):
        custom = [
            # A self-check starts a run on every worker: it needs add_taskrun.
            path(
                "selfcheck/",
                self.guarded_view(self.selfcheck_view, "add"),
                name="workers_taskrun_selfcheck",
            )
        ]
        return custom + super().get_urls()

    def selfcheck_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Starts a worker self-check on the queue named in POST (default: every queue)."""
        target = reverse("admin:workers_taskrun_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(target)
        wanted = request.POST.get("queue") or "all"
        names = queues.ALL if wanted == "all" else [wanted]
        if not set(names) <= set(queues.ALL):
            messages.error(request, f"Unknown queue {wanted!r}.")
            return HttpResponseRedirect(target)
        for name in names:
            services.task_run_start(
                task="workers.tasks.selfcheck",
                params={"steps": 10, "device": True},
                queue=name,
                user=request.user,
            )
        messages.success(request, f"Started a self-check on: {', '.join(names)}.")
        return HttpResponseRedirect(target)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "queues": queues.ALL}
        return super().changelist_view(request, extra_context)


@admin.register(ModelVersion)
class ModelVersionAdmin(ScopedListFilters, ModelPermissionAdmin):
    list_display = [
        "family",
        "version",
        "workspace",
        "status",
        "metrics_summary",
        "created_at",
        "promoted_at",
    ]
    list_filter = ["family", "status", "workspace"]
    actions = ["promote", "make_shadow", "retire", "roll_back"]
    readonly_fields = [
        "workspace",
        "family",
        "version",
        "status",
        "metrics",
        "params",
        "artifact_path",
        "task_run",
        "created_at",
        "promoted_at",
    ]

    change_list_template = "admin/workers/modelversion/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training runs

    def get_queryset(self, request):
        versions = super().get_queryset(request)
        if request.user.is_superuser:
            return versions
        return versions.filter(Q(workspace__in=visible_workspaces(request)) | Q(workspace=None))

    def get_urls(self):
        # Training writes a new version: add_modelversion (promoting one is change_modelversion).
        train = path(
            "train/", self.guarded_view(self.train_view, "add"), name="workers_modelversion_train"
        )
        return [train, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {
            **(extra_context or {}),
            "train_workspaces": user_workspaces(request),
            "train_models": training.trainable(),
            "train_default": training.DEFAULT_RECOMMENDER,
        }
        return super().changelist_view(request, extra_context)

    def train_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """POST workspace + model: starts a training run (on `gpu` for a sequential recommender,
        else on `ml`)."""
        target = reverse("admin:workers_taskrun_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(target)
        try:  # "abc", "²" or an id beyond bigint would reach the query and fail it
            workspace_id = validation.identifier(request.POST.get("workspace"))
        except validation.Invalid:
            workspace_id = None
        workspace = user_workspaces(request).filter(pk=workspace_id).first()
        model = request.POST.get("model")
        if workspace is None or model not in training.trainable():
            messages.error(request, "Pick one of your workspaces and a model.")
            return HttpResponseRedirect(reverse("admin:workers_modelversion_changelist"))
        training.training_start(
            workspace=workspace,
            model=model,
            repeat_purchases=bool(request.POST.get("repeat_purchases")),
            user=request.user,
        )
        messages.success(request, f"Training {model} on {workspace.name}; follow it below.")
        return HttpResponseRedirect(target)

    @admin.display(description="metrics")
    def metrics_summary(self, version: ModelVersion) -> str:
        items = list(version.metrics.items())[:4]
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)

    @admin.action(
        description="Promote to active (retires the current active version)", permissions=["change"]
    )
    def promote(self, request: HttpRequest, queryset) -> None:
        slots = {(w, slot_of(f)) for w, f in queryset.values_list("workspace", "family")}
        if len(slots) != queryset.count():
            self.message_user(
                request, "Pick one version per family (one recommender).", messages.ERROR
            )
            return
        for version in queryset:  # each starts its rescoring run
            services.model_version_promote(version=version, user=request.user)
        self.message_user(request, f"Promoted {len(slots)} version(s).")

    @admin.action(description="Set to shadow", permissions=["change"])
    def make_shadow(self, request: HttpRequest, queryset) -> None:
        for version in queryset:
            services.model_version_set_status(version=version, status=ModelVersion.Status.SHADOW)

    @admin.action(description="Retire", permissions=["change"])
    def retire(self, request: HttpRequest, queryset) -> None:
        for version in queryset:
            services.model_version_set_status(version=version, status=ModelVersion.Status.RETIRED)

    @admin.action(
        description="Roll back the selected families to their previous version",
        permissions=["change"],
    )
    def roll_back(self, request: HttpRequest, queryset) -> None:
        # Two recommenders of one workspace selected are one slot: rolled back one step, once.
        slots = {(w, slot_of(f)): f for w, f in queryset.values_list("workspace", "family")}
        for (workspace_id, _), family in sorted(slots.items(), key=lambda p: (p[0][0] or 0, p[1])):
            restored = services.model_version_rollback(
                family=family, workspace=workspace_id, user=request.user
            )
            if restored is None:
                self.message_user(request, f"{family}: nothing to roll back to.", messages.WARNING)
            else:
                self.message_user(request, f"{family}: v{restored.version} is active again.")
