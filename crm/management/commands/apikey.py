"""`python manage.py apikey create --workspace SLUG --scopes crm:read,crm:write [--name N]`
prints a new API key (shown once); `apikey list` and `apikey revoke PREFIX` manage them."""

from django.core.management.base import BaseCommand, CommandError

from crm import services
from crm.models import ApiKey, Workspace


class Command(BaseCommand):
    help = "Creates, lists or revokes API keys."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it")
        create.add_argument("--workspace", required=True, help="workspace slug")
        create.add_argument("--scopes", required=True, help=", ".join(ApiKey.SCOPES))
        create.add_argument("--name", default="integration")
        listing = sub.add_parser("list", help="list keys (never their secrets)")
        listing.add_argument("--workspace")
        revoke = sub.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, **opts) -> None:
        getattr(self, f"do_{opts['action']}")(opts)

    def do_create(self, opts) -> None:
        workspace = Workspace.objects.filter(slug=opts["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace {opts['workspace']!r}")
        scopes = [s.strip() for s in opts["scopes"].split(",") if s.strip()]
        try:
            _, secret = services.api_key_create(
                workspace=workspace, name=opts["name"], scopes=scopes
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(secret)

    def do_list(self, opts) -> None:
        keys = ApiKey.objects.select_related("workspace").order_by("workspace__slug", "name")
        if opts["workspace"]:
            keys = keys.filter(workspace__slug=opts["workspace"])
        for key in keys:
            state = "revoked" if key.revoked_at else "active"
            self.stdout.write(
                f"{key.prefix}  {key.workspace.slug:<20} {key.name:<20} {state:<8} "
                f"{','.join(key.scopes)}"
            )

    def do_revoke(self, opts) -> None:
        key = ApiKey.objects.filter(prefix=opts["prefix"]).first()
        if key is None:
            raise CommandError(f"no key with prefix {opts['prefix']!r}")
        services.api_key_revoke(key=key)
        self.stdout.write(f"revoked {key.prefix}")
