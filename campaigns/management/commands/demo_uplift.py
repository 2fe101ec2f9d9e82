"""`python manage.py demo_uplift --workspace demo [--if-empty] [--train]`: a sent campaign with
a 50% holdout and simulated conversions that depend on each customer's orders
(campaigns.services.uplift_demo), so the uplift path can be tried on the demo: train the model
(Campaigns: select it, "Train an uplift model..."; or --train), read its scores and the four
segments, then launch a campaign targeting the top k% by uplift. Nothing is e-mailed: the
ledger is marked sent directly. Running it again changes nothing."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.services.uplift import uplift_training_start
from campaigns.services.uplift_demo import demo_uplift_campaign
from crm.models import Segment, Workspace
from crm.services.churn import reference_time

DEFAULT_SEGMENT = "Demo: newsletter subscribers"  # crm's demo_contacts makes it
NAME = "Demo: uplift (simulated, 50% holdout)"


class Command(BaseCommand):
    help = "A simulated sent campaign with a holdout, for trying uplift models on the demo."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--segment", default=DEFAULT_SEGMENT, help="the audience, by name")
        parser.add_argument(
            "--days-ago",
            type=int,
            default=14,
            help="sent this many days before the data's last day (the demo's ends in 2011)",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if the demo campaign exists"
        )
        parser.add_argument(
            "--train", action="store_true", help="also queue the uplift model's training run"
        )

    def handle(self, *args, workspace: str, segment: str, days_ago: int, **options) -> None:
        space = Workspace.objects.filter(slug=workspace).first()
        if space is None:
            raise CommandError(f"no workspace {workspace!r}")
        existing = Campaign.objects.filter(workspace=space, name=NAME).first()
        if existing is not None and options["if_empty"]:
            self.stdout.write(f"the uplift demo campaign is there already (id {existing.pk})")
            return
        audience = Segment.objects.filter(workspace=space, name=segment).first()
        if audience is None:
            raise CommandError(f"no segment {segment!r} in {workspace!r} (run demo_contacts)")
        if not 1 <= days_ago <= 3650:
            raise CommandError("--days-ago: from 1 to 3650")
        sent_at = reference_time(space) - timedelta(days=days_ago)
        campaign = demo_uplift_campaign(
            workspace=space, segment=audience, sent_at=sent_at, name=NAME
        )
        rows = campaign.messages
        self.stdout.write(
            f"campaign {campaign.pk} {campaign.name!r}: {rows.filter(state='sent').count()} sent, "
            f"{rows.filter(holdout=True).count()} held out, at {sent_at:%Y-%m-%d %H:%M}"
        )
        if options["train"]:
            run = uplift_training_start(workspace=space, goal=campaign.goal_event)
            self.stdout.write(f"training queued on the {run.queue} queue (task {run.pk})")
