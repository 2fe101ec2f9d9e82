"""`python manage.py up`: runs the whole platform on this machine until Ctrl-C."""

import os
import shlex

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from marketing_ai import mode
from workers import queues, runtime
from workers.management.commands.ensure_admin import admin_login


class Command(BaseCommand):
    help = (
        "Starts the platform: an embedded Redis server (unless REDIS_URL is set), a Celery worker "
        "for every queue, Celery beat and the web server; Ctrl-C stops them all."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("MARKETING_AI_HOST", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("MARKETING_AI_PORT", 8000))
        )
        parser.add_argument(
            "--queues",
            default=",".join(queues.ALL),
            help="queues the worker consumes (default: all of them)",
        )
        parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
        parser.add_argument("--web-workers", type=int, default=4)
        parser.add_argument("--no-worker", action="store_true", help="do not start a worker")
        parser.add_argument("--no-beat", action="store_true", help="do not start Celery beat")
        parser.add_argument("--no-migrate", action="store_true", help="skip `migrate` first")
        parser.add_argument(
            "--after",
            action="append",
            default=[],
            metavar="COMMAND",
            help="a manage.py command (with its arguments) to run once everything is up, e.g. "
            "'train_missing --workspace demo' (repeatable; its failure is logged, not fatal)",
        )
        parser.add_argument(
            "--login", default="", help="the admin login to name on the last line (`make demo`)"
        )

    def handle(self, *args, **opts) -> None:
        self.stdout.write(f"[up] {mode.banner()}")
        # The services started below run in this same mode, given to them explicitly.
        os.environ["MARKETING_AI_ENV"] = settings.MARKETING_AI_ENV
        wanted = [q for q in opts["queues"].split(",") if q]
        unknown = set(wanted) - set(queues.ALL)
        if unknown:
            raise CommandError(f"unknown queue(s): {', '.join(sorted(unknown))}")
        if not opts["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        if settings.PRODUCTION:
            call_command("collectstatic", interactive=False, verbosity=0)

        services: list[runtime.Service] = []
        redis_port = None
        if settings.EMBEDDED_REDIS:
            redis_port = settings.EMBEDDED_REDIS_PORT
            if runtime.wait_for_port(redis_port, timeout=0.2):
                raise CommandError(
                    f"port {redis_port} is taken: another `up` may be running, or set "
                    "MARKETING_AI_REDIS_PORT (or REDIS_URL for an existing Redis server)"
                )
            services.append(
                runtime.redis_service(port=redis_port, data_dir=settings.DATA_DIR / "redis")
            )
        if not opts["no_worker"]:
            services += runtime.worker_services(queues=wanted, concurrency=opts["concurrency"])
        if not opts["no_beat"]:
            services.append(runtime.beat_service(data_dir=settings.DATA_DIR))
        services.append(
            runtime.web_service(host=opts["host"], port=opts["port"], workers=opts["web_workers"])
        )

        def ready(service: runtime.Service) -> bool:
            if service.name == "redis":
                return runtime.wait_for_port(redis_port)
            if service.name == "web":
                if not runtime.wait_for_port(opts["port"], host=opts["host"], timeout=30):
                    return False
                url = f"http://{opts['host']}:{opts['port']}/admin/"
                self.stdout.write(
                    self.style.SUCCESS(f"marketing_ai is up at {url} (Ctrl-C stops everything)")
                )
                for command in opts["after"]:
                    self._run_after(command)
                if opts["login"]:
                    # Last, so it is what the terminal shows once the start-up has scrolled by:
                    # after the workers' banners, which they print as they come up.
                    workers = [s for s in services if s.name.startswith("worker:")]
                    if workers:
                        runtime.wait_for_workers(len(workers))
                    self.stdout.write(
                        self.style.SUCCESS(f"up at {url} — log in as {admin_login(opts['login'])}")
                    )
            return True

        supervisor = runtime.Supervisor(services, log=lambda m: self.stdout.write(f"[up] {m}"))
        code = supervisor.run(before_each=ready)
        self.stdout.write("[up] stopped")
        if code:
            raise CommandError("a service stopped unexpectedly; see the log above")

    def _run_after(self, command: str) -> None:
        """Runs one --after command in this process (the broker is up by now, so what it queues
        is sent at once); a failure is reported and the platform stays up."""
        name, *args = shlex.split(command)
        self.stdout.write(f"[up] {command}")
        try:
            call_command(name, *args, stdout=self.stdout, stderr=self.stderr)
        except Exception as exc:  # noqa: BLE001  (any failure: the platform itself is fine)
            self.stderr.write(f"[up] {command!r} failed: {exc}")
