"""Event to action: events posted over the API at a sustained rate, each entering a journey whose
first step is a webhook to a local receiver; how long from the API's 2xx to the receiver's hand.

    .venv/bin/python bench/journey_events.py     # its own PostgreSQL, Redis, gunicorn, Celery

Everything runs on this machine as it would in production: gunicorn (2 processes), a Celery
worker (queues default and sends, 2 pool processes) and beat, PostgreSQL, Redis, the receiver
(its own process) and the load generator (this one). A journey `event "signal" -> webhook ->
exit` listens; every event is a different customer's. The load is posted two ways, each for
BENCH_EVENTS_SECONDS (120):

- batched: BENCH_EVENTS_RATE (500) events a second as POST /api/v1/events/bulk of
  BENCH_EVENTS_BATCH (25) events, the way a site's collector forwards them;
- single: one event per POST /api/v1/events, at BENCH_EVENTS_SINGLE_RATE (100) a second.

Reported per way: events accepted, reached the receiver (and lost), and the latency from each
request's 2xx to the receiver's receipt of that event's webhook, p50 / p95 / p99 / max, the
offered and achieved rate. Anchors (published): Dittofeed takes an event up "within the next
minute"; Mautic acts on the next cron run (a minute or more); the target is p99 <= 1 s.
"""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

ROOT = services.ROOT
PYTHON = sys.executable
BIN = Path(PYTHON).parent
SECONDS = float(os.environ.get("BENCH_EVENTS_SECONDS", 120))
RATE = float(os.environ.get("BENCH_EVENTS_RATE", 500))
BATCH = int(os.environ.get("BENCH_EVENTS_BATCH", 25))
SINGLE_RATE = float(os.environ.get("BENCH_EVENTS_SINGLE_RATE", 100))
CLIENTS = int(os.environ.get("BENCH_EVENTS_CLIENTS", 8))
TARGET_P99 = 1.0
DITTOFEED_SECONDS = 60.0


# --- the receiver (its own process, so the load generator's threads do not delay it) ----------


def receiver(port: int, out: str) -> None:
    received: list[tuple[int, float]] = []

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps connections open, as receivers behind nginx do

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            at = time.time()
            n = json.loads(body)["data"]["trigger"]["properties"]["n"]
            received.append((n, at))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
    server.daemon_threads = True

    def stop(*_):
        Path(out).write_text(json.dumps(received))
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


# --- the load ---------------------------------------------------------------------------------


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def post(self, path: str, body) -> int:
        self.connection.request("POST", path, body=json.dumps(body), headers=self.headers)
        response = self.connection.getresponse()
        response.read()
        return response.status


def load(port: int, key: str, *, rate: float, batch: int, start: int, seconds: float) -> dict:
    """Posts events numbered from `start` at `rate` a second (`batch` per request) for
    `seconds`, from CLIENTS keep-alive connections; returns {n: time of the 2xx} and counts."""
    requests = int(rate * seconds / batch)
    interval = batch / rate
    accepted: dict[int, float] = {}
    failed = [0]
    late = []
    lock = threading.Lock()
    cursor = [0]
    began = time.time() + 0.5

    def work() -> None:
        client = Client(port, key)
        while True:
            with lock:
                index = cursor[0]
                cursor[0] += 1
            if index >= requests:
                return
            slot = began + index * interval
            wait = slot - time.time()
            if wait > 0:
                time.sleep(wait)
            else:
                late.append(-wait)
            numbers = list(range(start + index * batch, start + (index + 1) * batch))
            rows = [
                {"customer": f"email:c{n % CUSTOMERS}@example.com", "type": "signal",
                 "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "properties": {"n": n}}
                for n in numbers
            ]  # fmt: skip
            if batch == 1:
                status = client.post("/api/v1/events", rows[0])
            else:
                status = client.post("/api/v1/events/bulk", {"rows": rows})
            done = time.time()
            with lock:
                if 200 <= status < 300:
                    for n in numbers:
                        accepted[n] = done
                else:
                    failed[0] += len(numbers)

    threads = [threading.Thread(target=work) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(accepted.values(), default=began) - began
    return {
        "accepted": accepted,
        "failed": failed[0],
        "achieved_rate": len(accepted) / elapsed if elapsed > 0 else 0.0,
        "late_p99": percentile(late, 99) if late else 0.0,
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


CUSTOMERS = int(os.environ.get("BENCH_EVENTS_CUSTOMERS", 100_000))


def stage_lags(runs) -> dict[str, float]:
    """Where the time goes, from the database: the event written -> the journey took it in
    (the outbox read), and the webhook queued -> posted (the delivery run), p50 / p99 each."""
    from datetime import datetime

    from campaigns.journeys.models import Enrolment
    from campaigns.models import WebhookDelivery
    from crm.models import Event

    created = dict(Event.objects.values_list("pk", "created_at"))
    entered = {}
    for context, at in Enrolment.objects.values_list("context", "entered_at"):
        n = context["properties"]["n"]
        entered[n] = (at - created[context["event_id"]]).total_seconds()
    posted = {}
    for payload, at in WebhookDelivery.objects.filter(delivered_at__isnull=False).values_list(
        "payload", "delivered_at"
    ):
        n = payload["data"]["trigger"]["properties"]["n"]
        posted[n] = (at - datetime.fromisoformat(payload["created"])).total_seconds()
    figures = {}
    for name, _, _, start in runs:
        ours = range(start, start + 5_000_000)
        for stage, lags in (("outbox_read", entered), ("webhook_post", posted)):
            values = [lag for n, lag in lags.items() if n in ours]
            for p in (50, 99):
                figures[f"{name}_{stage}_p{p}_s"] = round(percentile(values, p), 3)
    return figures


def main() -> None:
    with services.postgres() as database_url, services.redis() as redis_url:
        data_dir = tempfile.mkdtemp(prefix="bench-events-")
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MARKETING_AI_DATA_DIR": data_dir,
            "MARKETING_AI_ENV": "development",
            "DEBUG": "False",
            "API_RATE_LIMIT": "10000000/min",
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
            "WEBHOOK_ALLOW_HTTP": "1",
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update(env)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
        import django

        django.setup()
        from campaigns.journeys import services as journeys
        from campaigns.models import WebhookDelivery, WebhookEndpoint
        from crm.models import Customer, Workspace
        from crm.services import api_key_create

        workspace = Workspace.objects.create(slug="bench", name="Bench")
        _, key = api_key_create(workspace=workspace, name="bench", scopes=["crm:read", "crm:write"])
        Customer.objects.bulk_create(
            [Customer(workspace=workspace, email=f"c{i}@example.com") for i in range(CUSTOMERS)],
            batch_size=10_000,
        )
        hook_port = services.free_port()
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace, url=f"http://127.0.0.1:{hook_port}/hook", secret="bench",  # noqa: S106
            events=["journey.step"],
        )  # fmt: skip
        journey = journeys.journey_create(workspace=workspace, name="Signal", definition={
            "trigger": {"type": "event", "event": "signal"}, "start": "hook",
            "steps": {"hook": {"type": "webhook", "endpoint": endpoint.pk, "next": "end"},
                      "end": {"type": "exit"}},
        })  # fmt: skip
        journeys.journey_publish(journey=journey)
        from django.db import connection

        connection.close()

        received_file = Path(data_dir) / "received.json"
        web_port = services.free_port()
        logs = Path(data_dir)
        processes = {
            "receiver": subprocess.Popen(
                [PYTHON, __file__, "receiver", str(hook_port), str(received_file)], env=env
            ),
            "web": subprocess.Popen(
                [str(BIN / "gunicorn"), "marketing_ai.wsgi:application", "--bind",
                 f"127.0.0.1:{web_port}", "--workers", "2", "--threads", "4",
                 "--no-control-socket", "--log-level", "warning"],
                cwd=ROOT, env=env,
            ),
            "worker": subprocess.Popen(
                [str(BIN / "celery"), "-A", "workers", "worker", "-Q", "default,sends",
                 "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip",
                 "--without-mingle", "--hostname", "bench@%h"],
                cwd=ROOT, env=env, stdout=open(logs / "worker.log", "w"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            ),
            "beat": subprocess.Popen(
                [str(BIN / "celery"), "-A", "workers", "beat", "--loglevel", "WARNING",
                 "--schedule", str(logs / "beat-schedule")],
                cwd=ROOT, env=env, stdout=open(logs / "beat.log", "w"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            ),
        }  # fmt: skip
        figures: dict[str, float] = {"customers": CUSTOMERS, "seconds": SECONDS}
        rows = []
        try:
            services.wait_for_port(web_port)
            services.wait_for_port(hook_port)
            # Warm-up (not counted): each web process and pool process loads and connects.
            load(web_port, key, rate=50, batch=5, start=10_000_000, seconds=4)
            time.sleep(5)
            runs = (
                ("batched", RATE, BATCH, 0),
                ("single", SINGLE_RATE, 1, 5_000_000),
            )
            results = {}
            for name, rate, batch, start in runs:
                outcome = load(web_port, key, rate=rate, batch=batch, start=start, seconds=SECONDS)
                results[name] = outcome
                # Let what is in flight arrive before the next run begins.
                deadline = time.time() + 60
                while time.time() < deadline:
                    pending = WebhookDelivery.objects.filter(
                        state=WebhookDelivery.State.PENDING
                    ).count()
                    if not pending:
                        break
                    time.sleep(0.5)
                time.sleep(2)
            stages = stage_lags(runs)
        finally:
            for name in ("web", "worker", "beat"):
                processes[name].terminate()
            processes["receiver"].send_signal(signal.SIGTERM)
            processes["receiver"].wait(30)
            for name in ("web", "worker", "beat"):
                try:
                    processes[name].wait(30)
                except subprocess.TimeoutExpired:
                    processes[name].kill()
        figures.update(stages)
        received = dict(json.loads(received_file.read_text()))
        duplicates = len(json.loads(received_file.read_text())) - len(received)
        figures["duplicate_webhooks"] = duplicates
        for name, rate, batch, _ in runs:
            outcome = results[name]
            latencies = [received[n] - at for n, at in outcome["accepted"].items() if n in received]
            lost = sum(1 for n in outcome["accepted"] if n not in received)
            p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
            figures.update({
                f"{name}_offered_per_s": rate,
                f"{name}_batch": batch,
                f"{name}_achieved_per_s": round(outcome["achieved_rate"], 1),
                f"{name}_accepted": len(outcome["accepted"]),
                f"{name}_rejected": outcome["failed"],
                f"{name}_reached": len(latencies),
                f"{name}_lost": lost,
                f"{name}_p50_s": round(p50, 3),
                f"{name}_p95_s": round(p95, 3),
                f"{name}_p99_s": round(p99, 3),
                f"{name}_max_s": round(max(latencies, default=float("nan")), 3),
                f"{name}_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
                f"{name}_sender_late_p99_s": round(outcome["late_p99"], 3),
            })  # fmt: skip
            how = f"{batch} per request" if batch > 1 else "one per request"
            rows.append((
                f"{name}: {rate:,.0f} events/s offered ({how}), {SECONDS:.0f} s",
                f"{outcome['achieved_rate']:,.0f}/s taken, p50 {p50:.3f} s, p99 {p99:.3f} s, "
                f"{lost} lost",
                f"target p99 <= {TARGET_P99:.0f} s; Dittofeed ~{DITTOFEED_SECONDS:.0f} s",
                f"{DITTOFEED_SECONDS / p99:,.0f}x Dittofeed" if p99 == p99 and p99 > 0 else "-",
            ))  # fmt: skip
        figures["dittofeed_pickup_s_published"] = DITTOFEED_SECONDS
        services.write_results("journey_events", figures)
        services.print_table("Event to action (API 2xx -> webhook received)", rows)
        print(f"duplicate webhooks: {duplicates}")
        for name, value in sorted(stages.items()):
            print(f"{name}: {value}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        receiver(int(sys.argv[2]), sys.argv[3])
    else:
        main()
