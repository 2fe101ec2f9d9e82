"""`python manage.py train_missing --workspace SLUG [--model NAME ...]`: queues training of every
model the workspace lacks or whose data changed since it was trained (`make demo` runs it once
the platform is up, so the customer page fills in by itself)."""

from django.core.management.base import BaseCommand, CommandError

from crm.models import Workspace
from crm.services import training


class Command(BaseCommand):
    help = (
        "Queues training runs for the models a workspace lacks (recommender, churn, lifetime "
        "value, RFM, clusters); a model trained since the last order, or training now, is kept."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True)
        parser.add_argument(
            "--model",
            action="append",
            choices=training.trainable(),
            help=f"one model (repeatable); default: {', '.join(training.FIRST_RUN)}",
        )

    def handle(self, *args, **opts) -> None:
        workspace = Workspace.objects.filter(slug=opts["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {opts['workspace']!r}")
        models = tuple(opts["model"] or training.FIRST_RUN)
        runs = training.training_start_missing(workspace=workspace, models=models)
        for model, (run, started) in runs.items():
            if started:
                self.stdout.write(f"training {model}: task run {run.pk} queued on {run.queue}")
            else:
                self.stdout.write(f"{model} is fresh: task run {run.pk} ({run.status})")
