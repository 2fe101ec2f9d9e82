"""workers.backup: `manage.py backup` then `manage.py restore` into a fresh database finds the data
again (pg_dump/pg_restore when the suite runs on PostgreSQL, SQLite's backup API otherwise)."""

import contextlib
import io
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from crm.models import Customer, Workspace
from tests.conftest import ROOT, database_url
from workers import backup, services

pytestmark = pytest.mark.django_db(transaction=True)  # committed: pg_dump is another process


@contextlib.contextmanager
def fresh_database(tmp_path: Path):
    """A new, empty database of the suite's kind, dropped afterwards; yields its settings."""
    current = connection.settings_dict
    if current["ENGINE"].endswith("sqlite3"):
        yield {**current, "NAME": str(tmp_path / "restored.sqlite3")}
        return
    import psycopg

    name = f"{current['NAME']}_restore_{uuid.uuid4().hex[:6]}"
    params = {
        "host": current["HOST"] or "localhost",
        "port": current["PORT"] or 5432,
        "user": current["USER"],
        "password": current["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**current, "NAME": name}
    finally:
        with psycopg.connect(**params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fetch(database: dict, sql: str) -> list[tuple]:
    """Rows of `sql` read from `database` directly, not through Django's connection."""
    if database["ENGINE"].endswith("sqlite3"):
        with contextlib.closing(sqlite3.connect(database["NAME"])) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(
        host=database["HOST"] or "localhost",
        port=database["PORT"] or 5432,
        user=database["USER"],
        password=database["PASSWORD"] or None,
        dbname=database["NAME"],
    ) as db:
        return db.execute(sql).fetchall()


def test_backup_restores_into_a_fresh_database_with_the_data(tmp_path, settings):
    settings.DATA_DIR = data_dir = tmp_path / "data"
    workspace = Workspace.objects.create(slug="kept", name="Kept Co")
    Customer.objects.bulk_create(
        [
            Customer(workspace=workspace, email=f"c{i}@kept.example", first_name="Ada")
            for i in range(250)
        ]
    )
    artifact = data_dir / "models" / "kept" / "predict.churn" / "v1.pkl"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"trained model bytes")
    (data_dir / "secret_key").write_text("the-installation-secret")
    (data_dir / "outbox").mkdir()
    (data_dir / "outbox" / "mail.log").write_text("not kept: rebuilt or not worth keeping")
    services.model_version_create(
        family="predict.churn",
        workspace=workspace,
        metrics={"auc": 0.8},
        artifact_path=str(artifact),
    )

    out = io.StringIO()
    call_command("backup", str(tmp_path / "backups"), stdout=out)
    folder = Path(out.getvalue().strip())
    assert (folder / "manifest.json").is_file() and folder.stat().st_mode & 0o077 == 0

    restored_dir = tmp_path / "restored-data"
    with fresh_database(tmp_path) as fresh:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(fresh),
            "MARKETING_AI_DATA_DIR": str(restored_dir),
        }
        result = subprocess.run(
            [sys.executable, "manage.py", "restore", str(folder)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        customers = fetch(
            fresh,
            "SELECT count(*), min(c.email) FROM crm_customer c JOIN crm_workspace w "
            "ON w.id = c.workspace_id WHERE w.slug = 'kept'",
        )
        assert customers == [(250, "c0@kept.example")]
        versions = fetch(fresh, "SELECT family, artifact_path FROM workers_modelversion")
        assert versions == [("predict.churn", str(artifact))]

        # The same backup again into a database that now holds data: refused, nothing merged.
        again = subprocess.run(
            [sys.executable, "manage.py", "restore", str(folder)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode != 0
        assert fetch(fresh, "SELECT count(*) FROM crm_customer") == [(250,)]

    restored = restored_dir / "models" / "kept" / "predict.churn" / "v1.pkl"
    assert restored.read_bytes() == b"trained model bytes"
    assert (restored_dir / "secret_key").read_text() == "the-installation-secret"
    assert not (restored_dir / "outbox").exists()


def test_an_altered_backup_is_refused(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    Workspace.objects.create(slug="w", name="W")
    folder = backup.backup_create(dest=tmp_path / "backups")
    dump = next(p for p in folder.iterdir() if p.name.startswith("database."))
    with open(dump, "ab") as f:
        f.write(b"tampered")
    with fresh_database(tmp_path) as fresh, pytest.raises(backup.BackupError, match="altered"):
        backup.backup_restore(folder=folder, database=fresh, data_dir=tmp_path / "restored")
