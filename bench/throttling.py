"""Per recipient-domain throttling under a provider's 421s (issue #21, "Throttling").

A campaign to BENCH_THROTTLE_RECIPIENTS (10,000) recipients spread evenly over three domains
(fast-a.example, fast-b.example, slow.example) is sent twice in one run, by the same Celery
worker and beat, PostgreSQL and Redis, to an aiosmtpd server started by this script: first with
no refusals (the baseline), then with the server answering "421 4.7.28 ... rate limited" at
RCPT for every slow.example recipient during its first BENCH_THROTTLE_SECONDS (8) seconds.
The server logs each accepted recipient with the time. Counted at the server: messages lost
(a recipient of the ledger with none), duplicated (more than one), and each domain's completion
time (launch -> its last message accepted) in both runs; the figure is the other domains'
completion time with the 421s against without.

    flock /work/briefs/bench-lock .venv/bin/python bench/throttling.py
"""

import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402
from bench.sends import PYTHON, ROOT, beat, kill, new_campaign, start, wait_sent, worker  # noqa: E402

RECIPIENTS = int(os.environ.get("BENCH_THROTTLE_RECIPIENTS", 10_000))
SECONDS = float(os.environ.get("BENCH_THROTTLE_SECONDS", 8))
DOMAINS = ("fast-a.example", "fast-b.example", "slow.example")
SLOW = "slow.example"


class Provider:
    """aiosmtpd handler: 421 for the slow domain during the first `seconds` from the first
    RCPT it sees, then 250; logs "recipient<TAB>time" for every accepted message."""

    def __init__(self, log: str, seconds: float) -> None:
        self.log = open(log, "a", buffering=1)  # noqa: SIM115
        self.seconds = seconds
        self.until: float | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.until is None:
            self.until = time.time() + self.seconds
        if address.endswith("@" + SLOW) and time.time() < self.until:
            return "421 4.7.28 Our system has detected an unusual rate of mail; rate limited"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        now = time.time()
        self.log.write("".join(f"{r}\t{now:.3f}\n" for r in envelope.rcpt_tos))
        return "250 2.0.0 OK"


def serve(port: int, log: str, seconds: float) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(Provider(log, seconds), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(1)
    finally:
        controller.stop()


def provider(workdir: Path, name: str, env: dict, seconds: float):
    port = services.free_port()
    log = workdir / f"{name}.log"
    log.touch()
    process = start(
        [PYTHON, str(Path(__file__)), "serve", str(port), str(log), str(seconds)],
        env,
        workdir / f"{name}.out",
    )
    services.wait_for_port(port)
    return process, port, log


def setup_audience():
    from django.utils import timezone

    from crm.models import Consent, Customer, Segment, SegmentMembership, Workspace

    workspace = Workspace.objects.create(slug="bench", name="Bench")
    customers = Customer.objects.bulk_create(
        Customer(
            workspace=workspace,
            email=f"c{i}@{DOMAINS[i % 3]}",
            first_name=f"Ann{i}",
            time_zone="Europe/London",
        )
        for i in range(RECIPIENTS)
    )
    now = timezone.now()
    Consent.objects.bulk_create(
        Consent(customer=c, channel="email", status="subscribed", updated_at=now) for c in customers
    )
    segment = Segment.objects.create(workspace=workspace, name="All", kind="static")
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, customer=c) for c in customers
    )
    return workspace, segment


def one_run(workspace, segment, name: str, env: dict, workdir: Path, seconds: float) -> dict:
    from campaigns.models import Message
    from campaigns.services.lifecycle import campaign_launch

    sink, port, log = provider(workdir, f"provider-{name}", env, seconds=seconds)
    run_env = {**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    beat_process, worker_process = beat(run_env, workdir), worker(run_env, workdir)
    time.sleep(6)  # worker boot is not part of a campaign
    campaign = new_campaign(workspace, segment, name)
    started = time.time()
    campaign_launch(campaign=campaign)
    wait_sent(campaign, timeout=900)
    kill(worker_process)
    kill(beat_process)
    kill(sink)
    lines = [line.split("\t") for line in log.read_text().splitlines() if line]
    counts = Counter(r for r, _ in lines)
    last: dict[str, float] = defaultdict(float)
    for recipient, at in lines:
        domain = recipient.rpartition("@")[2]
        last[domain] = max(last[domain], float(at) - started)
    expected = set(
        Message.objects.filter(campaign=campaign, holdout=False).values_list(
            "customer__email", flat=True
        )
    )
    attempts = Message.objects.filter(campaign=campaign, attempts__gt=1).count()
    return {
        "received": len(lines),
        "lost": len(expected - set(counts)),
        "duplicated": sum(1 for n in counts.values() if n > 1),
        "failed": Message.objects.filter(campaign=campaign, state="failed").count(),
        "retried_messages": attempts,
        **{f"done_s_{d.split('.')[0].replace('-', '_')}": round(last[d], 2) for d in DOMAINS},
    }


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-throttle-"))
    with services.postgres() as database_url, services.redis() as redis_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MARKETING_AI_ENV": "development",
            "DEBUG": "False",
            "PYTHONPATH": str(ROOT),
            "CAMPAIGN_FANOUT": "2",
            "CAMPAIGN_CHUNK": "200",
            "CAMPAIGN_SWEEP_SECONDS": "1",
            "CAMPAIGN_CLAIM_LEASE_SECONDS": "10",
            "CAMPAIGN_RETRY_BASE_SECONDS": "1",
            "CAMPAIGN_RETRY_MAX_SECONDS": "4",
            # A provider's throttling backs off from 1 s here (30 s by default), so the
            # bench's 8-second window is a few doublings.
            "CAMPAIGN_THROTTLE_BASE_SECONDS": "1",
            "CAMPAIGN_THROTTLE_MAX_SECONDS": "8",
            "CAMPAIGN_THROTTLE_START_RATE": "100",
            "CAMPAIGN_THROTTLE_RECOVER_SECONDS": "5",
            "MARKETING_AI_DATA_DIR": str(workdir),
            "DJANGO_SETTINGS_MODULE": "marketing_ai.settings",
        }
        os.environ.update(env)
        import subprocess

        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )
        import django

        django.setup()
        workspace, segment = setup_audience()
        clean = one_run(workspace, segment, "no-421", env, workdir, seconds=0)
        print("baseline:", clean, flush=True)
        slow = one_run(workspace, segment, "421", env, workdir, seconds=SECONDS)
        print("with 421s:", slow, flush=True)

    fast = ("fast_a", "fast_b")
    ratio = max(slow[f"done_s_{d}"] / clean[f"done_s_{d}"] for d in fast)
    figures = {
        "recipients": RECIPIENTS,
        "throttle_seconds": SECONDS,
        **{f"baseline_{k}": v for k, v in clean.items()},
        **{f"throttled_{k}": v for k, v in slow.items()},
        "other_domains_done_ratio": round(ratio, 2),
    }
    services.print_table(
        f"Throttling: {RECIPIENTS:,} recipients at 3 domains, {SLOW} answers 421 for {SECONDS:g} s",
        [
            (
                "lost / duplicated (counted at the server)",
                f"{slow['lost']} / {slow['duplicated']}",
                f"baseline {clean['lost']} / {clean['duplicated']}",
                "met" if not (slow["lost"] or slow["duplicated"]) else "NOT met",
            ),
            *(
                (
                    f"{d} done (launch -> last accepted)",
                    f"{slow[f'done_s_{d}']:.1f} s",
                    f"baseline {clean[f'done_s_{d}']:.1f} s",
                    f"{slow[f'done_s_{d}'] / clean[f'done_s_{d}']:.2f}x",
                )
                for d in (*fast, "slow")
            ),
            ("failed messages", str(slow["failed"]), str(clean["failed"]), ""),
        ],
    )
    print(services.write_results("throttling", figures))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
    else:
        main()
