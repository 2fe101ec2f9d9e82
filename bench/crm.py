"""CRM benchmark on PostgreSQL: bulk upsert over HTTP, the Online Retail II import, segment
evaluation over 1M customers / 10M events, and the list endpoint against a plain view.

    .venv/bin/python bench/crm.py            # starts its own PostgreSQL and Redis
    BENCH_DATABASE_URL=... BENCH_REDIS_URL=... .venv/bin/python bench/crm.py

Anchors, in the same run where they can run here: listmonk's importer (~10,000 records/s,
published), a plain-Django `.values()` view of the same rows, and the same segment rule written
the naive way (a correlated COUNT subquery per customer).
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

ROOT = services.ROOT
PYTHON = sys.executable
SEGMENT_CUSTOMERS = int(os.environ.get("BENCH_SEGMENT_CUSTOMERS", 1_000_000))
SEGMENT_EVENTS = int(os.environ.get("BENCH_SEGMENT_EVENTS", 10_000_000))
BULK_CUSTOMERS = int(os.environ.get("BENCH_BULK_CUSTOMERS", 100_000))
BATCH = 1000
# Which parts to run (all by default): http, import, segments. Results of parts not run are
# kept from the previous results file.
PARTS = set(os.environ.get("BENCH_PARTS", "http,import,segments").split(","))


def manage(*args: str, env: dict) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.connection.connect()
        # Without it, a request's headers and body in separate packets meet delayed ACKs:
        # ~40 ms of idle wire per request that measures the kernel, not the server.
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body)
        self.connection.request(method, path, body=payload, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def bulk_upsert(port: int, key: str, start: int, count: int, clients: int) -> float:
    """Posts `count` new customers in batches of 1,000 from `clients` threads; records/s."""
    batches = [
        [
            {
                "source": "bench",
                "external_id": str(i),
                "email": f"user{i}@example.com",
                "first_name": f"User{i}",
                "country": ("GB", "FR", "DE", "US")[i % 4],
                "attributes": {"plan": ("free", "pro")[i % 2], "visits": i % 50},
                "consent": {"email": "subscribed"},
            }
            for i in range(b, min(b + BATCH, start + count))
        ]
        for b in range(start, start + count, BATCH)
    ]
    # Payloads are encoded before the clock starts: the load generator shares the two cores
    # with the server and PostgreSQL, and its JSON encoding is not the server's work.
    payloads = [(len(batch), json.dumps(batch).encode()) for batch in batches]
    failures: list[str] = []

    def work(part: list) -> None:
        client = Client(port, key)
        for size, payload in part:
            status, body = client.request("POST", "/api/v1/customers/bulk", payload)
            result = json.loads(body)
            if status != 200 or result["created"] != size:
                failures.append(f"{status}: {body[:300]!r}")

    threads = [threading.Thread(target=work, args=(payloads[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"bulk upsert failed: {failures[:3]}")
    return count / elapsed


def requests_per_second(client: Client, path: str, seconds: float = 6.0) -> float:
    for _ in range(5):  # warm up
        client.request("GET", path)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        status, _ = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        done += 1
    return done / (time.perf_counter() - started)


def generate_segment_data(workspace_id: int) -> None:
    """1M customers, 10M events and 1M churn scores, generated inside PostgreSQL."""
    from django.db import connection

    n, m = SEGMENT_CUSTOMERS, SEGMENT_EVENTS
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO crm_customer (workspace_id, email, phone, first_name, last_name, locale,
                time_zone, country, attributes, created_at, updated_at)
            SELECT %s, NULL, '', '', '', '', '',
                   (ARRAY['GB','FR','DE','US','NL'])[1 + (i %% 5)], '{}', now(), now()
            FROM generate_series(1, %s) AS i
            """,
            [workspace_id, n],
        )
        cursor.execute("SELECT min(id) FROM crm_customer WHERE workspace_id = %s", [workspace_id])
        first = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO crm_event (workspace_id, customer_id, type, properties, occurred_at,
                idempotency_key, created_at)
            SELECT %s, %s + (hashint %% %s),
                   (ARRAY['view','view','view','add_to_cart','purchase','open','click'])
                       [1 + (hashint / 7 %% 7)],
                   '{}', now() - make_interval(secs => (hashint %% (365 * 86400))), NULL, now()
            FROM (SELECT abs(hashint4(i)) AS hashint FROM generate_series(1, %s) AS i) AS g
            """,
            [workspace_id, first, n, m],
        )
        cursor.execute(
            """
            INSERT INTO crm_customerscore (workspace_id, customer_id, kind, value, reasons,
                computed_at)
            SELECT %s, id, 'churn_risk', abs(hashint4(id::int)) / 2147483647.0, '[]', now()
            FROM crm_customer WHERE workspace_id = %s
            """,
            [workspace_id, workspace_id],
        )
    # Outside a transaction: VACUUM sets the visibility map that index-only scans rely on,
    # as autovacuum would after a load this size.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE crm_customer")
        cursor.execute("VACUUM ANALYZE crm_event")
        cursor.execute("VACUUM ANALYZE crm_customerscore")


RULE = {
    "all": [
        {"attribute": "country", "op": "eq", "value": "GB"},
        {"event": "view", "count": {"op": "gte", "value": 2}, "within_days": 90},
        {"score": "churn_risk", "op": "gt", "value": 0.6},
    ]
}


def naive_count(workspace) -> int:
    """The same rule as most ORMs write it: a correlated COUNT per customer (the anchor)."""
    from datetime import timedelta

    from django.db.models import Count, IntegerField, OuterRef, Subquery
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from crm.models import Customer, CustomerScore, Event

    views = (
        Event.objects.filter(
            customer=OuterRef("pk"),
            type="view",
            occurred_at__gte=timezone.now() - timedelta(days=90),
        )
        .values("customer")
        .annotate(n=Count("id"))
        .values("n")
    )
    risk = CustomerScore.objects.filter(customer=OuterRef("pk"), kind="churn_risk").values("value")
    return (
        Customer.objects.filter(workspace=workspace, country="GB")
        .annotate(
            views=Coalesce(Subquery(views, output_field=IntegerField()), 0), risk=Subquery(risk)
        )
        .filter(views__gte=2, risk__gt=0.6)
        .count()
    )


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def main() -> None:
    figures: dict[str, float] = {}
    rows: list[tuple[str, str, str, str]] = []
    with services.postgres() as database_url, services.redis() as redis_url:
        data_dir = tempfile.mkdtemp(prefix="bench-crm-")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MARKETING_AI_DATA_DIR": data_dir,
            "MARKETING_AI_URLCONF": "bench.urls",
            "API_RATE_LIMIT": "1000000/min",
            "MARKETING_AI_ENV": "development",
            "DEBUG": "False",
        }
        os.environ.update(env)
        manage("migrate", "--noinput", env=env)

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
        django.setup()
        from crm.models import Workspace
        from crm.services import api_key_create

        bench_ws = Workspace.objects.create(slug="bench", name="Bench")
        _, key = api_key_create(workspace=bench_ws, name="bench", scopes=["crm:read", "crm:write"])

        port = services.free_port()
        web = (
            None
            if "http" not in PARTS
            else subprocess.Popen(
                [
                    str(Path(PYTHON).parent / "gunicorn"),
                    "marketing_ai.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "2",
                    "--no-control-socket",
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        try:
            if web is None:
                raise _Skip
            services.wait_for_port(port)
            # --- bulk upsert over HTTP -----------------------------------------------------
            # Warm-up (not counted): each web worker imports, connects and plans once.
            bulk_upsert(port, key, 10 * BULK_CUSTOMERS, 4 * BATCH, clients=2)
            one = bulk_upsert(port, key, 0, BULK_CUSTOMERS, clients=1)
            two = bulk_upsert(port, key, BULK_CUSTOMERS, BULK_CUSTOMERS, clients=2)
            figures["bulk_upsert_records_per_s_1_client"] = round(one)
            figures["bulk_upsert_records_per_s_2_clients"] = round(two)
            figures["listmonk_import_records_per_s_published"] = 10_000
            for clients, rate in ((1, one), (2, two)):
                rows.append(
                    (
                        f"bulk upsert {BULK_CUSTOMERS:,} new customers, {clients} client(s), rec/s",
                        f"{rate:,.0f}",
                        "listmonk ~10,000 (published)",
                        f"{rate / 10_000:.2f}x",
                    )
                )

            # --- list endpoint against a plain .values() view ---------------------------------
            # Fresh planner statistics after the bulk load (autovacuum would get there too).
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            ours = requests_per_second(Client(port, key), "/api/v1/customers?limit=100")
            plain = requests_per_second(
                Client(port), "/bench/plain-customers?workspace=bench&limit=100"
            )
            figures["list_endpoint_rps"] = round(ours, 1)
            figures["plain_values_view_rps"] = round(plain, 1)
            figures["list_endpoint_ratio"] = round(ours / plain, 3)
            rows.append(
                (
                    "GET /api/v1/customers (100 rows), req/s",
                    f"{ours:,.0f}",
                    f"plain .values() view {plain:,.0f}",
                    f"{ours / plain:.2f} (target 0.8)",
                )
            )
        except _Skip:
            pass
        finally:
            if web is not None:
                web.terminate()
                web.wait()

        # --- Online Retail II import (after the HTTP runs: its aftermath - autovacuum on a
        # million fresh rows - would otherwise run during them) ----------------------------
        started = time.perf_counter()
        if "import" in PARTS:
            manage("import_online_retail", "--workspace", "retail", env=env)
            figures["online_retail_import_seconds"] = round(time.perf_counter() - started, 1)
            rows.append(
                (
                    "Online Retail II import (1,067,371 lines), s",
                    f"{figures['online_retail_import_seconds']}",
                    "target 90",
                    f"{figures['online_retail_import_seconds'] / 90:.2f} of target",
                )
            )

        # --- segments over 1M customers and 10M events -------------------------------------

        if "segments" in PARTS:
            segment_bench(figures, rows)

    services.print_table("CRM on PostgreSQL", rows)
    print(f"\nwrote {services.write_results('crm', {**previous_figures(), **figures})}")


class _Skip(Exception):
    pass


def previous_figures() -> dict:
    path = ROOT / "bench" / "results" / "crm.json"
    if not path.exists():
        return {}
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "machine"}


def segment_bench(figures: dict, rows: list) -> None:
    """Segments over 1M customers and 10M events."""
    from crm import segments
    from crm import services as crm_services
    from crm.models import Customer, Workspace
    from crm.services import segments as segment_services

    seg_ws = Workspace.objects.create(slug="segments", name="Segments")
    started = time.perf_counter()
    generate_segment_data(seg_ws.pk)
    figures["segment_data_generation_seconds"] = round(time.perf_counter() - started, 1)
    count_s, count = timed(lambda: segments.customers_matching(seg_ws, RULE).count())
    naive_s, naive = timed(lambda: naive_count(seg_ws), repeat=1)
    assert count == naive, (count, naive)
    figures["segment_count_seconds"] = round(count_s, 3)
    figures["segment_count_naive_seconds"] = round(naive_s, 3)
    figures["segment_members"] = count
    rows.append(
        (
            f"segment count, 3 conditions, {SEGMENT_CUSTOMERS:,} customers / "
            f"{SEGMENT_EVENTS:,} events, s",
            f"{count_s:.3f}",
            f"correlated subquery {naive_s:.3f}",
            f"{naive_s / count_s:.1f}x faster (target < 1 s)",
        )
    )

    segment = segment_services.segment_save(workspace=seg_ws, name="risky viewers", rules=RULE)
    full_s, _ = timed(lambda: segment_services.segment_refresh(segment=segment), repeat=1)
    figures["segment_full_refresh_seconds"] = round(full_s, 3)
    ids = list(
        Customer.objects.filter(workspace=seg_ws, country="GB").values_list("pk", flat=True)[:1000]
    )
    from django.utils import timezone

    now = timezone.now().isoformat()
    result = crm_services.event_bulk_create(
        workspace=seg_ws,
        rows=[{"customer": pk, "type": "view", "occurred_at": now} for pk in ids],
    )
    assert result.created == 1000
    inc_s, outcome = timed(
        lambda: segment_services.segment_refresh(segment=segment, customer_ids=ids),
        repeat=5,
    )
    figures["segment_incremental_refresh_ms"] = round(inc_s * 1000, 1)
    rows.append(("segment full refresh (materialise), s", f"{full_s:.2f}", "-", "-"))
    rows.append(
        (
            "membership refresh after 1,000 new events, ms",
            f"{inc_s * 1000:.1f}",
            f"full refresh {full_s * 1000:,.0f}",
            f"{full_s / inc_s:.0f}x less work (target < 100 ms)",
        )
    )


if __name__ == "__main__":
    main()
