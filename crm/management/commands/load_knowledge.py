"""Loads help articles (markdown files, "# Title" on the first line, slug = file name) into a
workspace's knowledge base; by default the demo shop's articles. Running it again updates them."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.models import Workspace
from crm.support.services import DEMO_KNOWLEDGE, knowledge_load


class Command(BaseCommand):
    help = "Load markdown help articles into a workspace's knowledge base."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--folder", default=str(DEMO_KNOWLEDGE))

    def handle(self, *args, workspace: str, folder: str, **options) -> None:
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"no workspace {workspace!r}")
        if not Path(folder).is_dir():
            raise CommandError(f"no folder {folder!r}")
        count = knowledge_load(workspace=ws, folder=Path(folder))
        self.stdout.write(
            f"{count} articles in {ws.name}'s knowledge base; chat at /chat/{ws.slug}/"
        )
