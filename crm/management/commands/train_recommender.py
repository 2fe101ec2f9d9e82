"""`python manage.py train_recommender --workspace SLUG [--model dlae] [--wait]`"""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from crm.models import Workspace
from crm.services import training
from marketing_ai.ml import recommend
from workers.models import TaskRun


class Command(BaseCommand):
    help = (
        "Starts a recommender training run (ml queue; sasrec on the gpu queue, which trains on "
        "the CPU where the machine has no GPU; a worker must run)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True)
        parser.add_argument(
            "--model", default=training.DEFAULT_RECOMMENDER, choices=recommend.names()
        )
        parser.add_argument("--params", default="{}", help='JSON, e.g. {"l2": 500}')
        parser.add_argument(
            "--repeat-purchases",
            action="store_true",
            help="lists may hold products the customer already bought (consumables)",
        )
        parser.add_argument("--wait", action="store_true", help="follow the run until it ends")

    def handle(self, *args, **opts) -> None:
        workspace = Workspace.objects.filter(slug=opts["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {opts['workspace']!r}")
        try:
            params = json.loads(opts["params"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise CommandError("--params must be a JSON object")
        run = training.training_start(
            workspace=workspace,
            model=opts["model"],
            params=params,
            repeat_purchases=opts["repeat_purchases"],
        )
        self.stdout.write(f"task run {run.pk} queued on {run.queue}")
        while opts["wait"]:
            run.refresh_from_db()
            self.stdout.write(f"  {run.progress:3d}% {run.message}")
            if run.status in TaskRun.FINISHED:
                self.stdout.write(
                    f"{run.status}: {json.dumps(run.result) if run.result else run.error}"
                )
                if run.status != TaskRun.Status.SUCCEEDED:
                    raise CommandError("training did not succeed")
                break
            time.sleep(2)
