"""`python manage.py ensure_admin`: makes sure a staff login exists and prints it.

For the one-machine demo: the first run creates `admin` with a random password, keeps it in
DATA_DIR/admin-password (readable only by this user) and prints it; later runs print it again.
"""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


def admin_login(username: str = "admin") -> str:
    """ "admin / <password>" where this machine keeps the demo's password (ensure_admin wrote
    it), else the name alone."""
    password_file = settings.DATA_DIR / "admin-password"
    try:
        return f"{username} / {password_file.read_text().strip()}"
    except OSError:
        return username


class Command(BaseCommand):
    help = "Creates the admin login if there is none and prints how to sign in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **opts) -> None:
        user_model = get_user_model()
        username = opts["username"]
        password_file = settings.DATA_DIR / "admin-password"
        user = user_model.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, email="", password=password)
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password)
            self.stdout.write(self.style.SUCCESS(f"Created admin login: {username} / {password}"))
        elif password_file.exists():
            password = password_file.read_text().strip()
            self.stdout.write(f"Admin login: {username} / {password}")
        else:
            self.stdout.write(
                f"Admin login: {username} (password set earlier; change it with "
                f"`python manage.py changepassword {username}`)"
            )
