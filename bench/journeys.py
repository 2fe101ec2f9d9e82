"""Journeys at scale on PostgreSQL: a million customers waiting in one delay step, all due at once.

    .venv/bin/python bench/journeys.py       # starts its own PostgreSQL; BENCH_JOURNEY_CUSTOMERS

A journey `delay 1h -> condition (country = GB) -> exit` takes in BENCH_JOURNEY_CUSTOMERS
(1,000,000) customers by the engine's own enrolment (one call per 10,000), then every timer is
made due at the same moment and BENCH_JOURNEY_WORKERS (2) processes run `engine.advance_due`
until none is left. Reported: enrolments/s; steps/s while they move on (the condition and the
exit: two steps per enrolment) and each enrolment's lateness (when its batch moved it minus
the due time), p50 / p99; and the invariants: every enrolment finished once, none stuck.

Anchors in the same run: a naive engine on a sample of BENCH_JOURNEY_NAIVE (3,000) enrolments,
one transaction per enrolment (lock its timer, evaluate the condition for that customer, move
it, write its history). Published: Mautic processes about 21 scheduled campaign events a second
(mautic#5423); Adobe Journey Optimizer promises 5,000 entries a second on its cluster (the
target on this two-core machine).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

ROOT = services.ROOT
PYTHON = sys.executable
CUSTOMERS = int(os.environ.get("BENCH_JOURNEY_CUSTOMERS", 1_000_000))
WORKERS = int(os.environ.get("BENCH_JOURNEY_WORKERS", 2))
NAIVE = int(os.environ.get("BENCH_JOURNEY_NAIVE", 3_000))
MAUTIC_PER_SECOND = 21.0
AJO_PER_SECOND = 5000.0
DEFINITION = {
    "start": "wait",
    "steps": {
        "wait": {"type": "delay", "duration": "1h", "next": "uk"},
        "uk": {"type": "condition", "rules": {"attribute": "country", "op": "eq", "value": "GB"},
               "yes": "gb", "no": "elsewhere"},
        "gb": {"type": "exit"},
        "elsewhere": {"type": "exit"},
    },
}  # fmt: skip


def setup_django(env: dict) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
    import django

    django.setup()


def worker(signals: Path) -> None:
    """One advancing process: set up (Django loaded, connected), says it is ready, waits for the
    go, then moves due enrolments until none is left."""
    setup_django({})
    from django.db import connection

    from campaigns.journeys import engine

    connection.ensure_connection()
    (signals / f"ready-{os.getpid()}").touch()
    while not (signals / "go").exists():
        time.sleep(0.01)
    while engine.advance_due(limit=2000):
        pass


def people(workspace, n: int, prefix: str) -> list[int]:
    from crm.models import Customer

    countries = ("GB", "DE", "FR")
    for start in range(0, n, 20_000):
        Customer.objects.bulk_create(
            [
                Customer(
                    workspace=workspace, email=f"{prefix}{i}@example.com", country=countries[i % 3]
                )
                for i in range(start, min(n, start + 20_000))
            ],
            batch_size=20_000,
        )
    return list(
        Customer.objects.filter(workspace=workspace, email__startswith=prefix)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def journey(workspace, name: str, definition: dict = DEFINITION):
    from campaigns.journeys import services as journeys

    made = journeys.journey_create(workspace=workspace, name=name, definition=definition)
    journeys.journey_publish(journey=made)
    made.refresh_from_db()
    return made


def naive(workspace, ids: list[int]) -> float:
    """Enrolments moved per second by a one-at-a-time engine (the same rows, the same rule)."""
    from django.db import transaction
    from django.utils import timezone

    from campaigns.journeys.models import Enrolment, EnrolmentStep, JourneyTimer
    from crm.segments import customers_matching

    started = time.perf_counter()
    for timer_id in JourneyTimer.objects.filter(enrolment__customer_id__in=ids).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            timer = (
                JourneyTimer.objects.select_for_update(skip_locked=True)
                .select_related("enrolment")
                .filter(pk=timer_id)
                .first()
            )
            if timer is None:
                continue
            enrolment = timer.enrolment
            now = timezone.now()
            uk = customers_matching(
                workspace, DEFINITION["steps"]["uk"]["rules"], customer_ids=[enrolment.customer_id]
            ).exists()
            end = "gb" if uk else "elsewhere"
            EnrolmentStep.objects.bulk_create([
                EnrolmentStep(enrolment=enrolment, version_id=enrolment.version_id, step="uk",
                              at=now, outcome="yes" if uk else "no"),
                EnrolmentStep(enrolment=enrolment, version_id=enrolment.version_id, step=end,
                              at=now),
            ])  # fmt: skip
            Enrolment.objects.filter(pk=enrolment.pk, step="wait").update(
                step=end, state=Enrolment.State.FINISHED, finished_at=now
            )
            timer.delete()
    return len(ids) / (time.perf_counter() - started)


def main() -> None:
    figures: dict[str, float] = {}
    with services.postgres() as database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing here needs the broker
            "MARKETING_AI_DATA_DIR": tempfile.mkdtemp(prefix="bench-journeys-"),
            "MARKETING_AI_ENV": "development",
            "DEBUG": "False",
            "LOG_LEVEL": "ERROR",
        }
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        setup_django(env)
        from django.db import connection, transaction
        from django.utils import timezone

        from campaigns.journeys import engine
        from campaigns.journeys.models import Enrolment, EnrolmentStep, JourneyTimer
        from crm.models import Workspace

        workspace = Workspace.objects.create(slug="bench", name="Bench")
        print(f"{CUSTOMERS:,} customers ...", flush=True)
        ids = people(workspace, CUSTOMERS, "p")
        big = journey(workspace, "A million waiting")
        started = time.perf_counter()
        for start in range(0, len(ids), 10_000):
            with transaction.atomic():
                engine.enrol(
                    version=big.version, entrants=[(pk, {}) for pk in ids[start : start + 10_000]]
                )
        enrol_seconds = time.perf_counter() - started
        figures["enrolments_per_s"] = round(CUSTOMERS / enrol_seconds, 1)
        print(f"enrolled in {enrol_seconds:.1f} s", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        # The workers start first, as a running platform's are; then every timer falls due.
        signals = Path(tempfile.mkdtemp(prefix="bench-journeys-go-"))
        processes = [
            subprocess.Popen(
                [PYTHON, __file__, "--worker", str(signals)], cwd=ROOT, env={**os.environ, **env}
            )
            for _ in range(WORKERS)
        ]
        while len(list(signals.glob("ready-*"))) < WORKERS:
            time.sleep(0.05)
        due = timezone.now()
        JourneyTimer.objects.filter(enrolment__journey=big).update(due_at=due)
        started = time.perf_counter()
        (signals / "go").touch()
        for process in processes:
            process.wait()
        move_seconds = time.perf_counter() - started
        finished = Enrolment.objects.filter(journey=big, state=Enrolment.State.FINISHED).count()
        exits = EnrolmentStep.objects.filter(version=big.version, step__in=("gb", "elsewhere"))
        once = exits.values("enrolment").distinct().count()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at - %s)),"
                " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM at - %s))"
                " FROM campaigns_enrolmentstep"
                " WHERE version_id = %s AND step IN ('gb', 'elsewhere')",
                [due, due, big.version_id],
            )
            p50, p99 = cursor.fetchone()
        figures.update({
            "customers": CUSTOMERS,
            "workers": WORKERS,
            "move_seconds": round(move_seconds, 2),
            "enrolments_moved_per_s": round(CUSTOMERS / move_seconds, 1),
            "steps_per_s": round(2 * CUSTOMERS / move_seconds, 1),
            "lateness_p50_s": round(float(p50), 2),
            "lateness_p99_s": round(float(p99), 2),
            "finished": finished,
            "exit_steps_written": exits.count(),
            "enrolments_exited_once": once,
            "stuck": engine.stuck(),
        })  # fmt: skip

        sample = people(workspace, NAIVE, "n")
        small = journey(workspace, "Naive sample")
        with transaction.atomic():
            engine.enrol(version=small.version, entrants=[(pk, {}) for pk in sample])
        JourneyTimer.objects.filter(enrolment__journey=small).update(due_at=timezone.now())
        naive_rate = naive(workspace, sample)
        figures["naive_enrolments_moved_per_s"] = round(naive_rate, 1)

    ours = figures["enrolments_moved_per_s"]
    rows = [
        ("enrolments taken in / s", f"{figures['enrolments_per_s']:,.0f}", "", ""),
        (f"moved on / s ({WORKERS} workers)", f"{ours:,.0f}",
         f"naive {naive_rate:,.0f}", f"{ours / naive_rate:.1f}x"),
        ("steps / s", f"{figures['steps_per_s']:,.0f}", f"Mautic ~{MAUTIC_PER_SECOND:.0f}",
         f"{figures['steps_per_s'] / MAUTIC_PER_SECOND:,.0f}x; target {AJO_PER_SECOND:,.0f}"),
        ("lateness p50 / p99", f"{figures['lateness_p50_s']} / {figures['lateness_p99_s']} s",
         "", ""),
        ("finished once / stuck", f"{figures['enrolments_exited_once']:,} / {figures['stuck']}",
         f"{CUSTOMERS:,} / 0", "ok" if figures["enrolments_exited_once"] == CUSTOMERS
         and figures["stuck"] == 0 and figures["exit_steps_written"] == CUSTOMERS else "FAIL"),
    ]  # fmt: skip
    services.print_table(f"Journeys: {CUSTOMERS:,} waiting in one delay step", rows)
    print(f"\nwrote {services.write_results('journeys', figures)}")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker(Path(sys.argv[-1]))
    else:
        main()
