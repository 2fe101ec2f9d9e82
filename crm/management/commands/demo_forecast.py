"""`python manage.py demo_forecast --workspace demo [--if-empty]`: queues the workspace's first
forecast run, which the worker that `manage.py up` starts then does (the demo's Online Retail II
history, weekly and daily, from its end in December 2011); the admin's Forecasts page shows it
once the run finishes. Nightly runs follow from beat."""

from django.core.management.base import BaseCommand, CommandError

from crm.models import Workspace
from crm.selectors.forecasts import active_version
from crm.services.training import OTHER_TASKS, training_start
from workers.models import TaskRun


class Command(BaseCommand):
    help = "Queue a forecast run of a workspace (for the demo: after its import)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing if the workspace has a forecast or a forecast run waiting",
        )

    def handle(self, *args, workspace: str, if_empty: bool, **options) -> None:
        space = Workspace.objects.filter(slug=workspace).first()
        if space is None:
            raise CommandError(f"no workspace {workspace!r}")
        if not space.orders.exists():
            raise CommandError(f"{workspace!r} has no orders to forecast (import them first)")
        if if_empty:
            version = active_version(space.pk)
            if version is not None:
                self.stdout.write(f"{workspace} has a forecast already (version {version.version})")
                return
            waiting = TaskRun.objects.filter(
                workspace=space,
                kind=OTHER_TASKS["forecast"],
                status__in=[TaskRun.Status.QUEUED, TaskRun.Status.RUNNING],
            ).first()
            if waiting is not None:
                self.stdout.write(f"a forecast run of {workspace} is {waiting.status} already")
                return
        run = training_start(workspace=space, model="forecast")
        self.stdout.write(
            f"forecast run queued on the {run.queue} queue (task {run.pk}); the worker started "
            "by `manage.py up` does it, then Forecasts in the admin shows it"
        )
