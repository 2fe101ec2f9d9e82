"""`python manage.py journey_template NAME --workspace SLUG [--set key=value ...] [--publish]`:
installs a ready-made journey (campaigns.journeys.ready_made) and prints its id."""

from django.core.management.base import BaseCommand, CommandError

from campaigns.journeys import ready_made
from campaigns.journeys.models import Journey
from campaigns.journeys.services import JourneyError
from crm.models import Workspace


class Command(BaseCommand):
    help = "Installs a ready-made journey (welcome, abandoned_cart, post_purchase, win_back)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", choices=sorted(ready_made.TEMPLATES))
        parser.add_argument("--workspace", required=True)
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a setting, e.g. --set wait=30s (abandoned_cart: wait, reminder)",
        )
        parser.add_argument("--publish", action="store_true", help="make it live at once")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="do nothing when the workspace has this template's journey already (make demo)",
        )

    def handle(self, *args, name: str, workspace: str, publish: bool, **options) -> None:
        space = Workspace.objects.filter(slug=workspace).first()
        if space is None:
            raise CommandError(f"no workspace {workspace!r}")
        if options["if_missing"]:
            found = Journey.objects.filter(
                workspace=space, name=ready_made.TEMPLATES[name].title
            ).first()
            if found is not None:
                self.stdout.write(str(found.pk))
                self.stderr.write(f"{found.name}: {found.status} (there already)")
                return
        given = {}
        for pair in options["set"]:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--set takes key=value, not {pair!r}")
            given[key.strip()] = value.strip()
        try:
            journey = ready_made.install(workspace=space, name=name, given=given, publish=publish)
        except JourneyError as exc:  # a bad setting, or the definition it makes
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())
            raise CommandError(problems) from None
        self.stdout.write(str(journey.pk))
        self.stderr.write(f"{journey.name}: {journey.status}")
