"""`python manage.py import_customers FILE.csv --workspace SLUG [--source NAME]`"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.importers.customers_csv import decode_upload, import_customers_csv
from crm.models import Workspace


class Command(BaseCommand):
    help = (
        "Imports customers from a CSV file. Columns email, first_name, last_name, phone, locale, "
        "time_zone, country, source, external_id and consent_email/sms/push are fields; any "
        "other column becomes a custom attribute. Bad rows are reported by line number; a file "
        "the CSV reader cannot read (a cell over 131,072 characters) imports nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path")
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--source", default="csv", help="identity source for external_id")
        parser.add_argument("--report", help="also write the full report as JSON here")

    def handle(self, *args, **opts) -> None:
        workspace = Workspace.objects.filter(slug=opts["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {opts['workspace']!r}")
        path = Path(opts["path"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        report = import_customers_csv(
            workspace=workspace, stream=decode_upload(path.read_bytes()), source=opts["source"]
        )
        if opts["report"]:
            Path(opts["report"]).write_text(json.dumps(report, indent=2))
        if not report["imported"]:
            error = report["errors"][0]
            problems = "; ".join(", ".join(v) for v in error["errors"].values())
            raise CommandError(f"line {error['line']}: {problems}")
        self.stdout.write(
            f"created {report['created']}, updated {report['updated']}, "
            f"unchanged {report['unchanged']}, rejected {report['rejected']}"
        )
        for error in report["errors"][:50]:
            problems = "; ".join(f"{k}: {', '.join(v)}" for k, v in error["errors"].items())
            self.stdout.write(f"  line {error['line']}: {problems}")
        if report["rejected"]:
            raise CommandError(f"{report['rejected']} row(s) rejected; the others were imported")
