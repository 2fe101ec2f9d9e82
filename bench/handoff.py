"""How often a worker killed at a random moment loses a message between the ledger's COMMIT
and the SMTP "." (campaigns/ledger.py: the only window in which a kill loses one).

    .venv/bin/python bench/handoff.py        # starts its own PostgreSQL

A child process commits rows one by one, each followed by a write to a TCP listener that logs
what it receives (the "." of DATA); it is killed with SIGKILL at a random moment, again and
again. A row committed but never received is a lost message. Ours is `ledger._commit_then`
(the COMMIT held back with TCP_CORK until the "." is written); the anchor, in the same run, is
the plain order: write the COMMIT, then the ".". Two busy processes share the machine's cores,
as other workers and the database do in production.
"""

import os
import random
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

KILLS = int(os.environ.get("BENCH_HANDOFF_KILLS", 400))


class Listener:
    """Stands in for the SMTP server: logs every number whose line it receives."""

    def __init__(self) -> None:
        self.received: set[int] = set()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.server.accept()
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn) -> None:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        self.received.update(int(n) for n in data.split())


def plain_commit_then(action) -> None:
    """The anchor: COMMIT written (waking the database server), then the action."""
    from django.db import connection

    pg = connection.connection.pgconn
    pg.send_query(b"COMMIT")
    while pg.flush():
        select.select([], [pg.socket], [], 1.0)
    action()
    while True:
        pg.consume_input()
        if not pg.is_busy():
            break
        select.select([pg.socket], [], [], 1.0)
    while pg.get_result() is not None:
        pass


def sender(commit_then, first: int, port: int) -> None:
    from django.db import connection

    out = socket.create_connection(("127.0.0.1", port))
    out.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = first
    while True:
        n += 1
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("INSERT INTO bench_handoff VALUES (%s)", [n])
            commit_then(lambda n=n: out.sendall(b"%d\n" % n))
        sum(range(3000))  # the next message's rendering


def lost_share(commit_then, listener: Listener, kills: int, offset: int) -> tuple[float, int]:
    from django.db import connection, connections

    lost = committed_total = 0
    for trial in range(kills):
        first = (offset + trial + 1) * 10_000_000
        connections.close_all()
        pid = os.fork()
        if pid == 0:
            try:
                sender(commit_then, first, listener.port)
            finally:
                os._exit(0)
        time.sleep(random.uniform(0.05, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        time.sleep(0.05)  # the listener reads what the kernel flushed at close
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n FROM bench_handoff WHERE n > %s AND n < %s", [first, first + 10_000_000]
            )
            committed = {row[0] for row in cursor.fetchall()}
        committed_total += len(committed)
        lost += bool(committed - listener.received)
    return lost / kills, committed_total


def burner() -> int:
    pid = os.fork()
    if pid == 0:
        while True:
            pass
    return pid


def main() -> None:
    with services.postgres() as database_url:
        os.environ.update(
            DATABASE_URL=database_url,
            DJANGO_SETTINGS_MODULE="marketing_ai.settings",
            MARKETING_AI_ENV="development",
        )
        import django

        django.setup()
        from django.db import connection

        from campaigns import ledger

        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS bench_handoff (n bigint)")
            cursor.execute("TRUNCATE bench_handoff")
        burners = [burner() for _ in range(2)]
        try:
            listener = Listener()
            random.seed(1)
            ours, ours_rows = lost_share(ledger._commit_then, listener, KILLS, 0)
            plain, plain_rows = lost_share(plain_commit_then, listener, KILLS, KILLS)
        finally:
            for pid in burners:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    figures = {
        "kills_each": KILLS,
        "ours_lost_per_kill": round(ours, 4),
        "plain_lost_per_kill": round(plain, 4),
        "ours_messages": ours_rows,
        "plain_messages": plain_rows,
        "plain_over_ours": round(plain / ours, 1) if ours else float("inf"),
    }
    services.print_table(
        f"A worker killed at a random moment ({KILLS} kills each, 2 busy processes alongside)",
        [
            (
                "kills that lost a message",
                f"{ours:.2%}",
                f"{plain:.2%}",
                f"{figures['plain_over_ours']}x fewer",
            ),
            ("messages committed", f"{ours_rows:,}", f"{plain_rows:,}", ""),
        ],
    )
    print(services.write_results("handoff", figures))


if __name__ == "__main__":
    main()
