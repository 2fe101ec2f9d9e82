"""The mode (MARKETING_AI_ENV) is chosen on purpose, and every process says it in its log."""

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import (
    ROOT,
    free_port,
    start_beat,
    stop_worker,
    wait_until,
    worker_env,
)

SAID = "marketing_ai running in test mode"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py outside pytest's view: neither MARKETING_AI_ENV nor PYTEST_VERSION inherited."""
    base = {k: v for k, v in os.environ.items() if k not in ("MARKETING_AI_ENV", "PYTEST_VERSION")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unset_mode_refuses_to_start_with_a_clear_message():
    result = manage("check")
    assert result.returncode != 0
    assert "MARKETING_AI_ENV is not set" in result.stderr
    assert "MARKETING_AI_ENV=development" in result.stderr  # says what to set
    assert "Traceback" not in result.stderr


def test_unknown_mode_is_refused():
    result = manage("check", MARKETING_AI_ENV="staging")
    assert result.returncode != 0 and "not 'staging'" in result.stderr


def test_explicit_development_mode_runs():
    result = manage("check", MARKETING_AI_ENV="development")
    assert result.returncode == 0, result.stderr


def test_test_tooling_runs_in_test_mode_with_nothing_set():
    assert settings.MARKETING_AI_ENV == "test"  # this very suite, started with nothing set
    if "MARKETING_AI_ENV" not in os.environ:
        assert settings.MARKETING_AI_ENV_SOURCE == "MARKETING_AI_ENV unset, under pytest"
    code = "from django.conf import settings; print(settings.MARKETING_AI_ENV)"
    result = manage("shell", "-c", code, PYTEST_VERSION="8")  # a process a test starts
    assert result.returncode == 0 and result.stdout.split()[-1] == "test", result.stderr
    result = manage("test", "--help")
    assert result.returncode == 0, result.stderr


def read_until(path: Path, text: str, process: subprocess.Popen, timeout: float = 60) -> str:
    def found():
        assert process.poll() is None, path.read_text()
        content = path.read_text() if path.exists() else ""
        return content if text in content else ""

    return wait_until(found, timeout=timeout, interval=0.2)


def test_worker_log_says_the_mode(live_worker):
    log = Path(tempfile.gettempdir()) / f"test-worker-{live_worker}.log"
    line = next(x for x in log.read_text().splitlines() if SAID in x)
    assert f"worker {live_worker}@" in line and "(MARKETING_AI_ENV=test)" in line


@pytest.mark.django_db(transaction=True)
def test_beat_log_says_the_mode():
    name = f"mode-{uuid.uuid4().hex[:6]}"
    log = Path(tempfile.gettempdir()) / f"test-beat-{name}.log"
    process = start_beat(name)
    try:
        content = read_until(log, SAID, process)
    finally:
        stop_worker(process)
    assert any(line.startswith("[") and "beat: " + SAID in line for line in content.splitlines())


@pytest.mark.django_db(transaction=True)
def test_web_server_log_says_the_mode(tmp_path):
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                gunicorn,
                "marketing_ai.wsgi:application",
                "--bind",
                f"127.0.0.1:{free_port()}",
                "--workers",
                "1",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=worker_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        content = read_until(log, SAID, process)
    finally:
        stop_worker(process)
    line = next(x for x in content.splitlines() if SAID in x)
    assert "web: " in line and "DEBUG off" in line
