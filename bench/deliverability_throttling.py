"""Per recipient-domain throttling (bench/deliverability.py --throttling): a broadcast to
recipients spread evenly over three domains, sent twice in one run by the platform's real
Celery worker (default and sends queues, concurrency 2) and beat, its own PostgreSQL and Redis:
first to a sink that accepts everything (the baseline), then to one that answers
"421 4.7.0 Try again later, rate limited" at RCPT for every slow.example recipient during the
first THROTTLE_SECONDS (20) from its first RCPT, then accepts (tests/smtp_sink.py --lean
--throttle-domain; it closes the connection after the 421, as a 421 does).

Counted at the sink, which logs every accepted message with its time: messages per recipient
of the ledger (exactly 1 for all: nothing lost, nothing duplicated); for each domain the time
from the launch to its last message accepted, and the fast domains' time throttled / baseline
("unslowed": <= 1.10). Deferrals are counted in the database: an AFTER UPDATE trigger on the
ledger (this bench's throw-away database only) notes every row given a later due time: a claimed
one put back by the domain gate (its provider cooling down or at its rate), one put back after
its own 421, and a queued one moved past a cool-down (postponed, never claimed meanwhile).

The provider's cool-down starts at 1 s here (CAMPAIGN_THROTTLE_BASE_SECONDS, 30 s by default)
and doubles up to 8 s, the rate after it from 100/s, a step back per 5 quiet seconds, so a
20-second window is several doublings and the run takes a minute, not an hour.
"""

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench import sends as send_bench
from bench import services

ROOT = services.ROOT
FAST = ("fast1.example", "fast2.example")
SLOW = "slow.example"
DOMAINS = (*FAST, SLOW)
THROTTLE_SECONDS = float(os.environ.get("BENCH_THROTTLE_SECONDS", 20))

DEFERRALS = """
CREATE UNLOGGED TABLE bench_deferral (message_id bigint, campaign_id bigint, kind text,
                                      at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION bench_note_deferral() RETURNS trigger AS $$
BEGIN
  INSERT INTO bench_deferral (message_id, campaign_id, kind) VALUES (NEW.id, NEW.campaign_id,
    CASE WHEN OLD.state = 'queued' THEN 'postponed'
         WHEN NEW.reason LIKE 'waits for %' THEN 'gate' ELSE 'refused' END);
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_deferral AFTER UPDATE ON campaigns_message FOR EACH ROW
  WHEN (OLD.state IN ('sending', 'queued') AND NEW.state = 'queued'
        AND NEW.send_at IS DISTINCT FROM OLD.send_at)
  EXECUTE FUNCTION bench_note_deferral();
"""


def _one_run(workspace, segment, name: str, env: dict, workdir: Path, seconds: float) -> dict:
    from django.db import connection

    from campaigns.models import Message
    from campaigns.services.lifecycle import campaign_launch

    extra = ("--stamp", "--throttle-domain", SLOW, "--throttle-seconds", str(seconds))
    sink, port, log = send_bench.sink(
        workdir, f"sink-{name}", {**env}, extra=extra if seconds else ("--stamp",)
    )
    run_env = {**env, "EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    beat, worker = send_bench.beat(run_env, workdir), send_bench.worker(run_env, workdir)
    try:
        time.sleep(8)  # worker and beat boot is not part of the measure
        campaign = send_bench.new_campaign(workspace, segment, name)
        started = time.time()
        campaign_launch(campaign=campaign)
        send_bench.wait_sent(campaign, timeout=1200)
        time.sleep(0.5)  # the sink's last log line
    finally:
        send_bench.kill(worker)
        send_bench.kill(beat)
        send_bench.kill(sink)
    lines = [line.split("\t") for line in log.read_text().splitlines() if line]
    per_recipient = Counter(rcpt for rcpt, _id, _at in lines)
    last: dict[str, float] = defaultdict(float)
    for rcpt, _id, at in lines:
        domain = rcpt.rpartition("@")[2]
        last[domain] = max(last[domain], float(at) - started)
    expected = set(
        Message.objects.filter(campaign=campaign, holdout=False).values_list(
            "customer__email", flat=True
        )
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, count(*) FROM bench_deferral WHERE campaign_id = %s GROUP BY kind",
            [campaign.pk],
        )
        deferrals = {kind: n for kind, n in cursor.fetchall()}
        cursor.execute(
            "SELECT count(*), coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM bench_deferral "
            "WHERE campaign_id = %s GROUP BY message_id) per_message",
            [campaign.pk],
        )
        deferred_messages, most = cursor.fetchone()
    return {
        "recipients": len(expected),
        "accepted": len(lines),
        "exactly_once": sum(1 for r in expected if per_recipient[r] == 1),
        "lost": sum(1 for r in expected if per_recipient[r] == 0),
        "duplicated": sum(1 for r in expected if per_recipient[r] > 1),
        "unexpected": len(set(per_recipient) - expected),
        "failed": Message.objects.filter(campaign=campaign, state="failed").count(),
        "done_s_fast": round(max(last[d] for d in FAST), 2),
        "done_s_slow": round(last[SLOW], 2),
        "done_s_all": round(max(last.values()), 2),
        "deferrals_gate": deferrals.get("gate", 0),
        "deferrals_refused": deferrals.get("refused", 0),
        "deferrals_postponed": deferrals.get("postponed", 0),
        "deferred_messages": deferred_messages,
        "deferrals_most_per_message": most,
    }


def run(*, recipients: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-throttling-"))
    with services.postgres() as database_url, services.redis() as redis_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MARKETING_AI_ENV": "development",
            "DEBUG": "False",
            "PYTHONPATH": str(ROOT),
            "MARKETING_AI_DATA_DIR": str(workdir),
            "DJANGO_SETTINGS_MODULE": "marketing_ai.settings",
            "CAMPAIGN_CHUNK": "200",
            "CAMPAIGN_SWEEP_SECONDS": "1",
            "CAMPAIGN_THROTTLE_BASE_SECONDS": "1",
            "CAMPAIGN_THROTTLE_MAX_SECONDS": "8",
            "CAMPAIGN_THROTTLE_START_RATE": "100",
            "CAMPAIGN_THROTTLE_RECOVER_SECONDS": "5",
        }
        os.environ.update(env)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                       env=env, check=True)  # fmt: skip
        import django

        django.setup()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(DEFERRALS)
        workspace, segment = send_bench.setup_audience(
            recipients, slug="throttling", address=lambda i: f"reader{i}@{DOMAINS[i % 3]}"
        )
        baseline = _one_run(workspace, segment, "baseline", env, workdir, 0)
        print("baseline:", baseline, flush=True)
        throttled = _one_run(workspace, segment, "throttled", env, workdir, THROTTLE_SECONDS)
        print("throttled:", throttled, flush=True)
    figures: dict[str, float] = {
        "throttle_recipients": recipients,
        "throttle_421_seconds": THROTTLE_SECONDS,
        **{f"throttle_baseline_{k}": v for k, v in baseline.items()},
        **{f"throttle_throttled_{k}": v for k, v in throttled.items()},
    }
    figures["throttle_fast_done_ratio"] = round(
        throttled["done_s_fast"] / baseline["done_s_fast"], 3
    )
    return figures
