"""Backups of an installation: the database and the files under DATA_DIR that cannot be rebuilt.

A backup is one folder: the database (PostgreSQL: `pg_dump --format=custom`; SQLite: a copy
made with SQLite's online backup API, consistent while the platform keeps writing), the files
that matter (the generated secret key, uploaded media, the trained models' artifacts) and a
manifest with each file's sha256. Redis is not in it: it holds queued task messages, counters
and cached answers, which the database's sweepers and the caches rebuild (README: Backup and
restore).
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

# Under DATA_DIR: what a restore needs. The rest (static/, outbox/, datasets/, redis/, the
# converted language-model cache) is rebuilt or is not worth keeping.
DATA_FILES = ("secret_key", "admin-password")
DATA_FOLDERS = ("media",)
MODEL_SUFFIXES = (".pkl",)  # ml.registry's artifacts, DATA_DIR/models/<workspace>/<family>/


class BackupError(RuntimeError):
    """A backup or restore that cannot be made; the message says why."""


def _sqlite(database: dict) -> bool:
    return database["ENGINE"].endswith("sqlite3")


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore: PG_BIN_DIR, else the newest /usr/lib/postgresql/<n>/bin, else PATH
    (a pg_dump older than the server refuses to dump it)."""
    folders = [os.environ["PG_BIN_DIR"]] if os.environ.get("PG_BIN_DIR") else []
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    folders += [str(p) for p in reversed(versions) if p.parent.name.isdigit()]
    for folder in folders:
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client or set PG_BIN_DIR")
    return found


def _pg_args(database: dict) -> tuple[list[str], dict]:
    args = [
        "--host",
        database.get("HOST") or "localhost",
        "--port",
        str(database.get("PORT") or 5432),
    ]
    if database.get("USER"):
        args += ["--username", database["USER"]]
    env = {**os.environ}
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = database["PASSWORD"]  # not on the command line, where ps shows it
    return args, env


def _run(argv: list[str], env: dict) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[:2000]}")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def database_dump(*, database: dict, path: Path) -> Path:
    """Writes the database to `path` (a pg_dump archive, or a SQLite file); returns `path`."""
    if _sqlite(database):
        source = sqlite3.connect(database["NAME"])
        target = sqlite3.connect(path)
        try:
            with target:
                source.backup(target)  # page by page, a consistent snapshot despite writers
        finally:
            target.close()
            source.close()
        return path
    args, env = _pg_args(database)
    _run(
        [
            pg_tool("pg_dump"),
            *args,
            "--format=custom",
            "--no-owner",
            "--file",
            str(path),
            database["NAME"],
        ],
        env,
    )
    return path


def database_load(*, database: dict, path: Path) -> None:
    """Loads a dump made by `database_dump` into `database`, which must be new and empty."""
    if _sqlite(database):
        target_path = Path(database["NAME"])
        if target_path.exists() and target_path.stat().st_size:
            raise BackupError(f"{target_path} exists: restore into a new database file")
        source, target = sqlite3.connect(path), sqlite3.connect(target_path)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return
    if _pg_tables(database):
        raise BackupError(
            f"database {database['NAME']!r} is not empty: restore into a new one (createdb)"
        )
    args, env = _pg_args(database)
    _run(
        [
            pg_tool("pg_restore"),
            *args,
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            database["NAME"],
            str(path),
        ],
        env,
    )


def _pg_tables(database: dict) -> int:
    # psycopg: the PostgreSQL driver, loaded only where the database is PostgreSQL
    import psycopg

    with psycopg.connect(
        host=database.get("HOST") or "localhost",
        port=database.get("PORT") or 5432,
        user=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        dbname=database["NAME"],
    ) as db:
        query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        return db.execute(query).fetchone()[0]


def _data_paths(data_dir: Path) -> list[Path]:
    """The files under `data_dir` that a backup keeps, relative to it."""
    found = [Path(name) for name in DATA_FILES if (data_dir / name).is_file()]
    for folder in DATA_FOLDERS:
        found += [p.relative_to(data_dir) for p in (data_dir / folder).rglob("*") if p.is_file()]
    models = data_dir / "models"
    found += [
        p.relative_to(data_dir)
        for p in models.rglob("*")
        if p.is_file() and p.suffix in MODEL_SUFFIXES
    ]
    return sorted(found)


def backup_create(*, dest: Path) -> Path:
    """A new backup folder under `dest` (named by the UTC time); returns its path."""
    database = settings.DATABASES["default"]
    data_dir = Path(settings.DATA_DIR)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(dest) / f"marketing_ai-{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    os.chmod(folder, 0o700)  # it holds the secret key and every customer's data
    dump = folder / ("database.sqlite3" if _sqlite(database) else "database.pgdump")
    database_dump(database=database, path=dump)
    files = {}
    for relative in _data_paths(data_dir):
        target = folder / "data" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / relative, target)
        files[str(relative)] = _sha256(target)
    manifest = {
        "created_at": stamp,
        "vendor": "sqlite" if _sqlite(database) else "postgresql",
        "database": {"file": dump.name, "sha256": _sha256(dump)},
        "data_dir": str(data_dir),
        "files": files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def backup_restore(*, folder: Path, database: dict | None = None, data_dir: Path | None = None):
    """Restores a backup folder into `database` (default: the configured one, which must be new
    and empty) and its files into `data_dir` (default: DATA_DIR). Every file is checked against
    the manifest's sha256 first; returns the manifest."""
    database = database or settings.DATABASES["default"]
    data_dir = Path(data_dir or settings.DATA_DIR)
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    wanted = "sqlite" if _sqlite(database) else "postgresql"
    if manifest["vendor"] != wanted:
        raise BackupError(f"a {manifest['vendor']} backup cannot be restored into {wanted}")
    dump = folder / manifest["database"]["file"]
    checks = {dump: manifest["database"]["sha256"]}
    checks.update({folder / "data" / name: sha for name, sha in manifest["files"].items()})
    for path, sha in checks.items():
        if not path.is_file() or _sha256(path) != sha:
            raise BackupError(f"{path} is missing or altered (sha256 differs from the manifest)")
    database_load(database=database, path=dump)
    for name in manifest["files"]:
        target = data_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / "data" / name, target)
    return manifest
