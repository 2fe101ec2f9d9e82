"""workers/management/commands/up.py: `manage.py up` starts the whole platform and leaves no process
behind when stopped."""

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, database_url, free_port, wait_until

pytestmark = pytest.mark.slow


def descendants(pid: int) -> dict[int, str]:
    """Living descendants of `pid` as {pid: command line}, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, str] = {}
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            try:
                cmd = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            found[child] = cmd.decode(errors="replace")
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


HEALTHZ_TOKEN = "up-test-monitor-token"


def get_json(url: str) -> dict | None:
    # The token shows /healthz's details (database vendor...), not only the status.
    request = urllib.request.Request(url, headers={"X-Healthz-Token": HEALTHZ_TOKEN})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())
    except OSError:
        return None


class Up:
    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        base.update(
            MARKETING_AI_DATA_DIR=str(tmp_path / "data"),
            MARKETING_AI_REDIS_PORT=str(free_port()),
            PYTHONUNBUFFERED="1",
            HEALTHZ_TOKEN=HEALTHZ_TOKEN,
            **env,
        )
        self.log_path = tmp_path / "up.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "up",
                "--port",
                str(self.port),
                "--web-workers",
                "1",
                "--concurrency",
                "1",
                *args,
            ],
            cwd=ROOT,
            env=base,
            stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_healthy(self) -> dict:
        def healthy():
            assert self.process.poll() is None, self.log()
            body = get_json(self.url("/healthz"))
            return body if body and body["status"] == "ok" else None

        return wait_until(healthy, timeout=180, interval=0.5)

    def kill_all(self) -> None:
        for pid in descendants(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.kill()
        self.process.wait()


@pytest.fixture
def up_factory(tmp_path):
    started: list[Up] = []

    def start(*args: str, **env: str) -> Up:
        up = Up(tmp_path, *args, **env)
        started.append(up)
        return up

    yield start
    for up in started:  # a failed test still leaves nothing running
        up.kill_all()


def test_up_starts_everything_and_ctrl_c_stops_it_all(up_factory):
    # What `make demo` adds: commands run once up (one failing), then the login, last.
    after = ("--after", "check --tag admin", "--after", "no_such_command", "--login", "admin")
    up = up_factory(*after, MARKETING_AI_ENV="development")
    health = up.wait_healthy()
    assert health["database"]["vendor"] == "sqlite"
    # The mode, first thing in the log, and again from each service it started.
    said = "marketing_ai running in development mode (MARKETING_AI_ENV=development): DEBUG on"
    assert up.log().splitlines()[0].startswith(f"[up] {said}"), up.log()[:2000]
    for process in ("web: ", "worker all@", "beat: "):
        lines = lambda p=process: [x for x in up.log().splitlines() if p in x and said in x]  # noqa: E731
        wait_until(lines, timeout=30)

    procs = descendants(up.process.pid)
    commands = " | ".join(procs.values())
    assert "redis-server" in commands
    assert "worker -Q default,sends,ml,gpu" in commands
    assert "beat --scheduler django_celery_beat" in commands
    assert "gunicorn" in commands

    with urllib.request.urlopen(up.url("/admin/login/"), timeout=5) as response:
        assert response.status == 200
    ours = [x for x in up.log().splitlines() if x.startswith(("[up] ", "up at ", "System check"))]
    ran = ours.index("[up] check --tag admin")
    assert ours[ran + 1].startswith("System check identified no issues"), ours
    assert ours[ran + 2] == "[up] no_such_command"
    assert "'no_such_command' failed: Unknown command" in up.log()
    wait_until(lambda: "log in as admin" in up.log(), timeout=60)
    lines = up.log().splitlines()
    login = [x for x in lines if x.startswith("up at ")]
    assert login == [f"up at {up.url('/admin/')} — log in as admin"], up.log()[-2000:]
    # After the workers' start-up banners, not buried under them; and beat does not log each
    # task it sends (journeys every 5 s) at INFO.
    banner = max(i for i, x in enumerate(lines) if x.startswith(" -------------- "))
    assert lines.index(login[0]) > banner, up.log()[-3000:]
    assert "Scheduler: Sending due task" not in up.log()
    with urllib.request.urlopen(up.url("/static/admin/css/base.css"), timeout=5) as response:
        assert response.status == 200

    up.process.send_signal(signal.SIGINT)  # what Ctrl-C delivers
    assert up.process.wait(60) == 0, up.log()
    wait_until(lambda: not any(alive(pid) for pid in procs), timeout=10)
    assert "[up] stopped" in up.log()


def test_killed_supervisor_leaves_no_orphans(up_factory):
    up = up_factory()
    up.wait_healthy()
    procs = descendants(up.process.pid)
    assert len(procs) >= 4
    up.process.kill()  # SIGKILL: no chance to clean up; the children must still go
    up.process.wait()
    wait_until(lambda: not any(alive(pid) for pid in procs), timeout=30)


def test_with_given_urls_up_starts_only_our_processes(up_factory, django_db_setup, redis_url):
    from django.db import connection

    broker = redis_url.rsplit("/", 1)[0] + "/5"  # another database number: queues stay apart
    up = up_factory(DATABASE_URL=database_url(connection.settings_dict), REDIS_URL=broker)
    up.wait_healthy()
    commands = " | ".join(descendants(up.process.pid).values())
    assert "redis-server" not in commands
    assert "worker -Q" in commands and "gunicorn" in commands
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(60) == 0, up.log()


def test_up_refuses_unknown_queue(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["MARKETING_AI_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "up", "--queues", "default,nope", "--no-migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "unknown queue(s): nope" in result.stderr
