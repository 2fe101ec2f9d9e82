"""Campaign sends end to end on PostgreSQL: audience -> ledger -> render -> SMTP to a local sink.

    .venv/bin/python bench/sends.py          # starts its own PostgreSQL, Redis, sink, workers

Part 1: a 100,000-recipient e-mail campaign launched as staff launch it (a TaskRun writes the
ledger, Celery workers on the `sends` queue deliver), timed from launch to "sent". Anchor in the
same run: a naive loop of Django's `send_mail` per recipient (template rendered per message) to
the same server. Published anchors: listmonk field reports of 12-16 messages/s into SES; Postfix
~2,500/s to a discard transport.

Part 2: the same campaign again with 5% of recipients greylisted (451 at RCPT) and the worker
killed with SIGKILL (main process and pool) twice mid-send; the sink's log is checked for
duplicates and missing recipients.

Part 3: the same message sent by a journey: the same recipients enrolled (the engine's own
enrolment, 10,000 per call, as a segment trigger takes them in) into `send -> exit`, whose send
step writes each enrolment's ledger row; the same workers deliver. Timed from the first
enrolment to the last message sent, against part 1's messages/s (target: at least 0.8x).

The sink (tests/smtp_sink.py --lean) is a small asyncio SMTP server with PIPELINING on the same
two cores; it logs every accepted message.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

ROOT = services.ROOT
PYTHON = sys.executable
RECIPIENTS = int(os.environ.get("BENCH_SEND_RECIPIENTS", 100_000))
NAIVE = int(os.environ.get("BENCH_NAIVE_RECIPIENTS", 2_000))
CONCURRENCY = int(os.environ.get("BENCH_SEND_CONCURRENCY", 2))
HTML = (
    "<html><body><h1>Hello {{ customer.first_name }}</h1>"
    '<p>Our <a href="https://shop.example.com/winter">winter collection</a> is in, and '
    '<a href="https://shop.example.com/sale?src=mail">the sale</a> ends Sunday.</p>'
    "<p>See you soon,<br>The Shop</p></body></html>"
)


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=open(log, "a"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def sink(
    workdir: Path, name: str, env: dict, fail_rate: float = 0.0, extra: tuple[str, ...] = ()
) -> tuple:
    """tests/smtp_sink.py on a free port, logging what it accepts; `extra`: more of its
    options (--stamp, --throttle-domain ...)."""
    port = services.free_port()
    log = workdir / f"{name}.log"
    log.touch()
    process = start(
        [
            PYTHON,
            "-m",
            "tests.smtp_sink",
            "--lean",
            "--port",
            str(port),
            "--log",
            str(log),
            "--fail-rate",
            str(fail_rate),
            "--fail-at",
            "rcpt",
            *extra,
        ],
        env,
        workdir / f"{name}.out",
    )
    services.wait_for_port(port)
    return process, port, log


def worker(
    env: dict, workdir: Path, queues: str = "default,sends", concurrency: int | None = None
) -> subprocess.Popen:
    celery = str(Path(PYTHON).parent / "celery")
    return start(
        [
            celery,
            "-A",
            "workers",
            "worker",
            "-Q",
            queues,
            "--concurrency",
            str(concurrency or CONCURRENCY),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"bench-{queues}-{time.time_ns()}@%h",
        ],
        env,
        workdir / f"worker-{queues}.log",
    )


def beat(env: dict, workdir: Path) -> subprocess.Popen:
    celery = str(Path(PYTHON).parent / "celery")
    return start(
        [
            celery,
            "-A",
            "workers",
            "beat",
            "--loglevel",
            "WARNING",
            "--max-interval",
            "1",
            "-s",
            str(workdir / "beat-schedule"),
        ],
        env,
        workdir / "beat.log",
    )


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def log_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def setup_audience(n: int = RECIPIENTS, *, slug: str = "bench", address=None):
    """A workspace of `n` subscribed customers and a static segment of them all; `address(i)`
    is the i-th one's e-mail (customer{i}@example.com by default). The deliverability benches
    build theirs here too."""
    from django.utils import timezone

    from crm.models import Consent, Customer, Segment, SegmentMembership, Workspace

    address = address or (lambda i: f"customer{i}@example.com")
    workspace = Workspace.objects.create(slug=slug, name=slug.title())
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        (
            Customer(
                workspace=workspace,
                email=address(i),
                first_name=f"Ann{i}",
                time_zone="Europe/London",
            )
            for i in range(n)
        ),
        batch_size=10_000,
    )
    Consent.objects.bulk_create(
        (
            Consent(customer=c, channel="email", status="subscribed", updated_at=now)
            for c in customers
        ),
        batch_size=10_000,
    )
    segment = Segment.objects.create(workspace=workspace, name="All", kind="static")
    SegmentMembership.objects.bulk_create(
        (SegmentMembership(segment=segment, customer=c) for c in customers), batch_size=10_000
    )
    return workspace, segment


def new_campaign(workspace, segment, name: str):
    from campaigns.models import Campaign, Variant
    from campaigns.services.variants import variant_approve

    campaign = Campaign.objects.create(
        workspace=workspace, name=name, from_email="shop@example.com"
    )
    campaign.include_segments.add(segment)
    subject = "{{ customer.first_name }}, winter is here"
    variant = Variant.objects.create(campaign=campaign, name="A", body_html=HTML, subject=subject)
    variant_approve(variant=variant)
    return campaign


def wait_sent(campaign, timeout: float = 1800) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        campaign.refresh_from_db()
        if campaign.status == "sent":
            return time.monotonic()
        time.sleep(0.2)
    raise RuntimeError(f"campaign {campaign.name} did not finish in {timeout} s")


def naive_loop(port: int) -> float:
    """Django's send_mail once per recipient, each rendering its own template."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.template import Context, Template

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    subject, body = Template("{{ name }}, winter is here"), Template(HTML.replace("customer.", ""))
    started = time.perf_counter()
    for i in range(NAIVE):
        context = Context({"first_name": f"Ann{i}", "name": f"Ann{i}"})
        html = body.render(context)
        send_mail(
            subject.render(context),
            html,
            "shop@example.com",
            [f"naive{i}@example.com"],
            html_message=html,
        )
    return NAIVE / (time.perf_counter() - started)


def journey_sends(workspace, segment) -> tuple[int, float, dict]:
    """Enrols the segment's customers into `send -> exit` and waits for every message to go;
    returns (sent, seconds from the first enrolment to the last send, skipped by reason)."""
    from django.db import transaction

    from campaigns.journeys import engine
    from campaigns.journeys import services as journeys
    from campaigns.models import Campaign, Message

    message = new_campaign(workspace, segment, "journey message")
    Campaign.objects.filter(pk=message.pk).update(kind=Campaign.Kind.JOURNEY)
    message.include_segments.clear()
    journey = journeys.journey_create(workspace=workspace, name="Send", definition={
        "start": "mail", "steps": {"mail": {"type": "send", "campaign": message.pk, "next": "end"},
                                   "end": {"type": "exit"}},
    })  # fmt: skip
    journeys.journey_publish(journey=journey)
    journey.refresh_from_db()
    ids = list(segment.memberships.order_by("customer_id").values_list("customer_id", flat=True))
    started = time.monotonic()
    for at in range(0, len(ids), 10_000):
        with transaction.atomic():
            engine.enrol(version=journey.version, entrants=[(c, {}) for c in ids[at : at + 10_000]])
    messages = Message.objects.filter(campaign=message)
    # Done when no message waits or is in a worker's hands (one claimed and not yet written
    # sent would go again in the next part, to the same addresses).
    unfinished = messages.filter(state__in=("queued", "sending"))
    deadline = time.monotonic() + 1800
    while unfinished.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the journey's messages did not all go in 30 minutes")
        time.sleep(0.2)
    finished = time.monotonic()
    skipped = Counter(messages.filter(state="skipped").values_list("reason", flat=True))
    return messages.filter(state="sent").count(), finished - started, dict(skipped)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-sends-"))
    with services.postgres() as database_url, services.redis() as redis_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MARKETING_AI_ENV": "development",
            "DEBUG": "False",
            "PYTHONPATH": str(ROOT),
            "CAMPAIGN_FANOUT": str(CONCURRENCY),
            "CAMPAIGN_CHUNK": "200",
            "CAMPAIGN_SWEEP_SECONDS": "2",
            "CAMPAIGN_CLAIM_LEASE_SECONDS": "5",
            "CAMPAIGN_RETRY_BASE_SECONDS": "1",
            "CAMPAIGN_RETRY_MAX_SECONDS": "4",
            "MARKETING_AI_DATA_DIR": str(workdir),
            "DJANGO_SETTINGS_MODULE": "marketing_ai.settings",
        }
        os.environ.update(env)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )
        import django

        django.setup()
        from campaigns.models import Message
        from campaigns.services.lifecycle import campaign_launch

        t = time.perf_counter()
        workspace, segment = setup_audience()
        print(f"audience of {RECIPIENTS:,} written in {time.perf_counter() - t:.1f} s", flush=True)

        # Part 1: a clean run.
        sink_process, port, sink_log = sink(workdir, "sink-clean", env)
        run_env = {**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
        beat_process = beat(run_env, workdir)
        worker_process = worker(run_env, workdir)
        time.sleep(6)  # worker boot is not part of a campaign
        campaign = new_campaign(workspace, segment, "clean")
        started = time.monotonic()
        run = campaign_launch(campaign=campaign)
        finished = wait_sent(campaign)
        run.refresh_from_db()
        elapsed = finished - started
        sent = Message.objects.filter(campaign=campaign, state="sent").count()
        received = log_lines(sink_log)
        ledger_seconds = (run.finished_at - run.started_at).total_seconds()
        print(f"clean run: {sent:,} sent in {elapsed:.1f} s", flush=True)
        kill(worker_process)
        kill(beat_process)
        naive = naive_loop(port)
        sink_process.terminate()

        # Part 3: the same message from a journey's send step.
        sink_process, port, sink_log = sink(workdir, "sink-journey", env)
        run_env = {**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
        beat_process = beat(run_env, workdir)
        worker_process = worker(run_env, workdir)
        time.sleep(6)
        journey_sent, journey_seconds, journey_skipped = journey_sends(workspace, segment)
        journey_received = log_lines(sink_log)
        print(f"journey run: {journey_sent:,} sent in {journey_seconds:.1f} s", flush=True)
        kill(worker_process)
        kill(beat_process)
        sink_process.terminate()

        # Part 2: greylisting and two kills.
        sink_process, port, sink_log = sink(workdir, "sink-faults", env, fail_rate=0.05)
        run_env = {**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
        beat_process = beat(run_env, workdir)
        worker_process = worker(run_env, workdir)
        time.sleep(6)
        faulty = new_campaign(workspace, segment, "faults")
        fault_started = time.monotonic()
        campaign_launch(campaign=faulty)
        kills = 0
        for share in (0.3, 0.65):
            while log_lines(sink_log) < RECIPIENTS * share:
                time.sleep(0.05)
            kill(worker_process)
            kills += 1
            worker_process = worker(run_env, workdir)
        fault_finished = wait_sent(faulty)
        counts = Counter(line.split("\t")[0] for line in sink_log.read_text().splitlines())
        expected = set(
            Message.objects.filter(campaign=faulty, state="sent").values_list("address", flat=True)
        )
        retried = Message.objects.filter(campaign=faulty, attempts__gt=1).count()
        kill(worker_process)
        kill(beat_process)
        sink_process.terminate()

    figures = {
        "recipients": RECIPIENTS,
        "worker_processes": CONCURRENCY,
        "sends_e2e_msgs_per_s": round(sent / elapsed, 1),
        "sends_e2e_seconds": round(elapsed, 1),
        "sends_ledger_seconds": round(ledger_seconds, 2),
        "sends_received_by_sink": received,
        "naive_send_mail_msgs_per_s": round(naive, 1),
        "speedup_vs_naive_send_mail": round(sent / elapsed / naive, 2),
        "journey_msgs_per_s": round(journey_sent / journey_seconds, 1),
        "journey_seconds": round(journey_seconds, 1),
        "journey_sent": journey_sent,
        "journey_received_by_sink": journey_received,
        "journey_skipped": sum(journey_skipped.values()),
        "journey_vs_campaign": round(journey_sent / journey_seconds / (sent / elapsed), 2),
        "fault_kills": kills,
        "fault_retried_messages": retried,
        "fault_e2e_seconds": round(fault_finished - fault_started, 1),
        "fault_duplicates": sum(1 for n in counts.values() if n > 1),
        "fault_lost": len(expected - set(counts)) + (RECIPIENTS - len(expected)),
        "fault_unexpected": len(set(counts) - expected),
    }
    services.print_table(
        f"Campaign sends, {RECIPIENTS:,} recipients, PostgreSQL, {CONCURRENCY} worker processes",
        [
            (
                "end to end (launch -> sent)",
                f"{figures['sends_e2e_msgs_per_s']:,.0f} msg/s",
                "target 1,000 msg/s",
                "met" if figures["sends_e2e_msgs_per_s"] >= 1000 else "NOT met",
            ),
            (
                "naive send_mail loop",
                "",
                f"{naive:,.0f} msg/s",
                f"{figures['speedup_vs_naive_send_mail']}x faster",
            ),
            (
                "the same from a journey's send step",
                f"{figures['journey_msgs_per_s']:,.0f} msg/s",
                f"campaign {figures['sends_e2e_msgs_per_s']:,.0f} msg/s (target 0.8x)",
                f"{figures['journey_vs_campaign']}x "
                + ("met" if figures["journey_vs_campaign"] >= 0.8 else "NOT met"),
            ),
            ("listmonk into SES (published)", "", "12-16 msg/s", ""),
            ("Postfix to discard (published)", "", "~2,500 msg/s", ""),
            ("ledger written (audience+draws)", f"{ledger_seconds:.1f} s", "", ""),
            (
                "2 SIGKILLs + 5% greylisted",
                f"{figures['fault_duplicates']} duplicates, {figures['fault_lost']} lost",
                "0 / 0",
                "met"
                if not figures["fault_duplicates"] and not figures["fault_lost"]
                else "NOT met",
            ),
        ],
    )
    print(services.write_results("sends", figures))


if __name__ == "__main__":
    main()
