"""`python manage.py restore FOLDER`: a backup into a new, empty database and DATA_DIR."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from workers import backup


class Command(BaseCommand):
    help = (
        "Restores a folder written by `manage.py backup` into the configured database, which "
        "must be new and empty (createdb, or a SQLite path that does not exist yet), and its "
        "files into MARKETING_AI_DATA_DIR. Checks every file's sha256 first."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("folder")

    def handle(self, *args, **opts) -> None:
        try:
            manifest = backup.backup_restore(folder=Path(opts["folder"]))
        except backup.BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"restored the {manifest['vendor']} database and {len(manifest['files'])} files "
            f"of {manifest['created_at']}; run `manage.py migrate` if this code is newer"
        )
