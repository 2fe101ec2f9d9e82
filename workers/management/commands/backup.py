"""`python manage.py backup [DEST]`: the database and the DATA_DIR files that matter."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from workers import backup


class Command(BaseCommand):
    help = (
        "Writes a backup folder under DEST (default: ./backups): the database (pg_dump custom "
        "format, or SQLite's online backup), the secret key, media and model artifacts, and a "
        "manifest of sha256 sums. Safe while the platform runs."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dest", nargs="?", default="backups")

    def handle(self, *args, **opts) -> None:
        try:
            folder = backup.backup_create(dest=Path(opts["dest"]))
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(folder))
