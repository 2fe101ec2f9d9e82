"""Production settings refuse unsafe defaults; `check --deploy` is clean when configured."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

GOOD_KEY = "k" * 20 + "-Jq8vN2xLw5Zt0RbYc7HsUe3" + "a1b2c3d4e5f6g7h8"
SEALING_KEY = "s" * 12 + "-Vb7Qm2Zr9Tw4Ky1Hd6Pn3Xc"


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG", "MARKETING_AI_SECRETS_KEY")
    }
    base.pop("ALLOWED_HOSTS", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key():
    result = run_manage("check", MARKETING_AI_ENV="production", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_debug_and_missing_hosts():
    result = run_manage(
        "check",
        MARKETING_AI_ENV="production",
        SECRET_KEY=GOOD_KEY,
        DEBUG="True",
        ALLOWED_HOSTS="example.com",
    )
    assert result.returncode != 0 and "DEBUG must be False" in result.stderr
    result = run_manage("check", MARKETING_AI_ENV="production", SECRET_KEY=GOOD_KEY)
    assert result.returncode != 0 and "ALLOWED_HOSTS" in result.stderr


def test_production_refuses_to_start_without_a_key_for_stored_secrets():
    result = run_manage(
        "check", MARKETING_AI_ENV="production", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="example.com"
    )
    assert result.returncode != 0 and "MARKETING_AI_SECRETS_KEY must be set" in result.stderr


def test_check_deploy_is_clean_in_production():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        MARKETING_AI_ENV="production",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="mkt.example.com",
        MARKETING_AI_SECRETS_KEY=SEALING_KEY,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_embedded_secret_key_is_generated_once(tmp_path):
    from marketing_ai.embedded import stored_secret_key

    first = stored_secret_key(tmp_path)
    assert len(first) >= 50
    assert stored_secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_no_missing_migrations():
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_web_process_loads_no_ml_libraries():
    """URLs, the WSGI app and every template tag library load without numpy, torch & co.:
    those belong to workers (imported inside task bodies and services that tasks call)."""
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'marketing_ai.settings'\n"
        "import marketing_ai.wsgi\n"
        "from django.urls import resolve; resolve('/api/v1/customers')\n"
        "from django.template import engines; engines['django'].engine.template_libraries\n"
        "heavy = ('numpy', 'pandas', 'scipy', 'torch', 'lightgbm', 'sklearn', 'transformers')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.django_db
def test_sqlite_commits_survive_power_loss():
    """synchronous=FULL: each commit's WAL frames reach the disk before COMMIT returns (NORMAL
    would lose the transactions since the last checkpoint to a power cut; ~2-3 ms a commit)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's fsync is its own server's setting")
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_links_follow_the_port_the_platform_serves_on():
    show = "from django.conf import settings; print(settings.PUBLIC_URL)"
    base = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_AI_P")}
    moved = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", show], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={**base, "MARKETING_AI_PORT": "8411"},
    )  # fmt: skip
    assert moved.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8411", moved.stderr
    named = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", show], cwd=ROOT, capture_output=True,
        text=True, timeout=120,
        env={**base, "MARKETING_AI_PORT": "8411", "MARKETING_AI_PUBLIC_URL": "https://shop.example"},
    )  # fmt: skip
    assert named.stdout.strip().splitlines()[-1] == "https://shop.example", named.stderr
