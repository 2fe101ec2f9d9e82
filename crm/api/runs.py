"""GET /api/v1/tasks/<id>: a run's status and progress, for clients polling a job they started."""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.auth import HasScope
from crm.models import ApiKey, Workspace
from workers.models import TaskRun


class StaffOrScope(HasScope):
    def has_permission(self, request, view) -> bool:
        if getattr(request.user, "is_staff", False) and not isinstance(request.auth, ApiKey):
            return True
        return super().has_permission(request, view)


def task_run_data(run: TaskRun) -> dict:
    return {
        "id": str(run.pk),
        "kind": run.kind,
        "queue": run.queue,
        "status": run.status,
        "progress": run.progress,
        "message": run.message,
        "params": run.params,
        "result": run.result,
        "error": run.error.strip().splitlines()[-1] if run.error else "",
        "attempts": run.attempts,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


TaskRunSchema = inline_serializer(
    "TaskRun",
    {
        "id": serializers.UUIDField(),
        "kind": serializers.CharField(),
        "queue": serializers.CharField(),
        "status": serializers.ChoiceField(choices=TaskRun.Status.choices),
        "progress": serializers.IntegerField(min_value=0, max_value=100),
        "message": serializers.CharField(),
        "params": serializers.JSONField(),
        "result": serializers.JSONField(),
        "error": serializers.CharField(help_text="The last line of the error, if it failed."),
        "attempts": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "finished_at": serializers.DateTimeField(allow_null=True),
    },
)


class TaskRunDetailApi(APIView):
    """An API key with `tasks:read` sees its workspace's runs; staff (session) those of the
    workspaces they are members of and the platform's own, as in the admin (a superuser every
    run)."""

    permission_classes = [StaffOrScope]
    read_scope = write_scope = "tasks:read"

    @extend_schema(responses=TaskRunSchema, summary="Status and progress of a task run")
    def get(self, request: Request, run_id: str) -> Response:
        runs = TaskRun.objects.all()
        if isinstance(request.auth, ApiKey):
            runs = runs.filter(workspace=request.auth.workspace)
        elif not request.user.is_superuser:
            mine = Workspace.objects.filter(members=request.user)
            runs = runs.filter(Q(workspace__in=mine) | Q(workspace=None))
        run = get_object_or_404(runs, pk=run_id)
        return Response(task_run_data(run))
