"""Feedback latency (bench/deliverability.py --latency): from a report arriving to the
suppression in force, through each way in, with the platform's real worker and beat, while a
campaign to the same people is sending; then how many of that campaign's messages went to an
address after its suppression was in force (target: 0; latency p95 target: <= 60 s).

Its own PostgreSQL, Redis, SMTP sink (tests/smtp_sink.py --lean), Dovecot (tests/dovecot.py),
Celery workers (sends, concurrency 2; default, concurrency 1) and beat (the database scheduler,
where the bounce mailbox has its entry, polled every 30 s as a mailbox is by default). An
earlier campaign's messages were sent with VERP return paths; while the second campaign sends
at CAMPAIGN_EMAIL_RATE (20/s), a hard bounce about a random recipient whose second message is
still queued arrives every second, in turn through:
- the LMTP receiver (campaigns.deliverability.receiver, in this process; smtplib.LMTP);
- the bounce mailbox (IMAP APPEND into Dovecot; the beat entry's poll records it);
- the ESP webhook (SendGrid's tracking payload posted through Django's test client to
  anymail's view; the worker processes the queued event).
Latency = the suppression row's created_at (the database's commit clock, same machine) minus
the moment just before the report was handed over.
"""

import base64
import json
import os
import random
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import sends as send_bench
from bench import services

ROOT = services.ROOT
WAYS = ("lmtp", "imap", "webhook")
BOUNCE_DOMAIN = "bounces.bench.example"
WEBHOOK_SECRET = "bench:webhook-secret"  # noqa: S105  (a throw-away server's)
SAMPLE_PATH = b"bounce+0f3c2a9b8d7e4f6a1b2c3d4e5f6a7b8c-aaaaaaaaaaaaaaaa@bounces.shop.example"
SAMPLE = ROOT / "bench" / "data" / "deliverability" / "hard_user_unknown.eml"


def _earlier_campaign(workspace, segment) -> dict:
    """{address: (message token hex, return path)} of a campaign sent an hour ago."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from campaigns.deliverability import verp
    from campaigns.models import Campaign, Message
    from campaigns.services.recipients import build_ledger

    campaign = send_bench.new_campaign(workspace, segment, "earlier")
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    build_ledger(campaign=campaign)
    rows = Message.objects.filter(campaign=campaign).select_related("customer")
    for message in rows:
        message.state, message.address = "sent", message.customer.email
        message.sent_at = timezone.now() - timedelta(hours=1)
    Message.objects.bulk_update(rows, ["state", "address", "sent_at"])
    Campaign.objects.filter(pk=campaign.pk).update(status="sent")
    return {
        m.address: (m.token.hex, verp.return_path(m.token.hex, BOUNCE_DOMAIN, settings.SECRET_KEY))
        for m in rows
    }


def _bounce(path: str, address: str) -> bytes:
    raw = SAMPLE.read_bytes().replace(SAMPLE_PATH, path.encode())
    return raw.replace(b"ghost.reader@mail.example.org", address.encode())


def _post_webhook(client, token: str, address: str, n: int) -> None:
    event = {"email": address, "timestamp": int(time.time()), "event": "bounce",
             "sg_event_id": f"bench-{n}", "smtp-id": f"<{token}@bench.example>",
             "reason": "550 5.1.1 user unknown"}  # fmt: skip
    auth = base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    response = client.post(
        "/webhooks/anymail/sendgrid/tracking/",
        json.dumps([event]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )
    assert response.status_code == 200, response.status_code


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(*, recipients: int, per_way: int) -> dict[str, float]:
    from tests.dovecot import Dovecot

    workdir = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    dovecot = Dovecot()
    try:
        with services.postgres() as database_url, services.redis() as redis_url:
            return _run(workdir, database_url, redis_url, dovecot, recipients, per_way)
    finally:
        dovecot.stop()


def _run(workdir, database_url, redis_url, dovecot, recipients, per_way) -> dict[str, float]:
    sink_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sink_process, port, _ = send_bench.sink(workdir, "sink", sink_env)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MARKETING_AI_ENV": "development",
        "DEBUG": "False",
        "PYTHONPATH": str(ROOT),
        "MARKETING_AI_DATA_DIR": str(workdir),
        "DJANGO_SETTINGS_MODULE": "marketing_ai.settings",
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "CAMPAIGN_EMAIL_RATE": "20",
        "CAMPAIGN_CHUNK": "20",
        "CAMPAIGN_SWEEP_SECONDS": "2",
        "CAMPAIGN_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "ANYMAIL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",  # Dovecot is on 127.0.0.1
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                   env=env, check=True)  # fmt: skip
    import django

    django.setup()
    from django.test import Client

    from campaigns.deliverability import receiver
    from campaigns.deliverability import services as deliv_services
    from campaigns.models import Campaign, Message, Suppression
    from campaigns.models.deliverability import BounceMailbox
    from campaigns.services.lifecycle import campaign_launch
    from tests.dovecot import PASSWORD, USER

    workspace, segment = send_bench.setup_audience(
        recipients, slug="latency", address=lambda i: f"reader{i}@example.com"
    )
    earlier = _earlier_campaign(workspace, segment)
    deliv_services.mailbox_save(
        mailbox=BounceMailbox(workspace=workspace, protocol="imap", host="127.0.0.1",
                              port=dovecot.imap, use_tls=False, username=USER),
        password=PASSWORD,
    )  # fmt: skip
    lmtp_port = services.free_port()
    lmtp = receiver.receiver(host="127.0.0.1", port=lmtp_port)
    lmtp.start()
    beat = send_bench.beat(env, workdir)
    # Sends and the rest on workers of their own, as deployed (README, "Running it at scale"):
    # deliver tasks pacing a campaign at its rate would otherwise hold every slot.
    workers = [
        send_bench.worker(env, workdir, "sends", 2),
        send_bench.worker(env, workdir, "default", 1),
    ]
    client = Client()
    try:
        time.sleep(8)  # worker and beat boot is not part of the measure
        campaign = send_bench.new_campaign(workspace, segment, "running")
        campaign_launch(campaign=campaign)
        deadline = time.monotonic() + 60
        while not Message.objects.filter(campaign=campaign, state="sent").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the campaign did not start sending")
            time.sleep(0.2)
        rng = random.Random(7)
        arrived: dict[str, tuple[str, float]] = {}  # address -> (way, time handed over)
        for n in range(per_way * len(WAYS)):
            way = WAYS[n % len(WAYS)]
            queued = list(
                Message.objects.filter(campaign=campaign, state="queued")
                .exclude(customer__email__in=list(arrived))
                .values_list("customer__email", flat=True)[:500]
            )
            if not queued:
                break
            address = rng.choice(queued)
            token, path = earlier[address]
            handed = time.time()
            if way == "lmtp":
                with smtplib.LMTP("127.0.0.1", lmtp_port) as smtp:
                    smtp.sendmail("", [path], _bounce(path, address).replace(b"\n", b"\r\n"))
            elif way == "imap":
                dovecot.put(_bounce(path, address))
            else:
                _post_webhook(client, token, address, n)
            arrived[address] = (way, handed)
            time.sleep(1)
        deadline = time.monotonic() + 120
        while Suppression.objects.filter(address__in=list(arrived)).count() < len(arrived):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        in_force = dict(
            Suppression.objects.filter(address__in=list(arrived)).values_list(
                "address", "created_at"
            )
        )
        deadline = time.monotonic() + 600
        while Campaign.objects.get(pk=campaign.pk).status != "sent":
            if time.monotonic() > deadline:
                raise RuntimeError("the running campaign did not finish")
            time.sleep(1)
        second = {m.address or m.customer.email: m for m in
                  Message.objects.filter(campaign=campaign).select_related("customer")}  # fmt: skip
    finally:
        for worker in workers:
            send_bench.kill(worker)
        send_bench.kill(beat)
        lmtp.stop()
        sink_process.terminate()
    figures: dict[str, float] = {"feedback_recipients": recipients}
    every: list[float] = []
    for way in WAYS:
        mine = [a for a, (w, _) in arrived.items() if w == way]
        latencies = [in_force[a].timestamp() - arrived[a][1] for a in mine if a in in_force]
        every += latencies
        figures[f"feedback_{way}_reports"] = len(mine)
        figures[f"feedback_{way}_suppressed"] = len(latencies)
        if latencies:
            figures[f"feedback_{way}_p50_s"] = round(_percentile(latencies, 0.5), 3)
            figures[f"feedback_{way}_p95_s"] = round(_percentile(latencies, 0.95), 3)
            figures[f"feedback_{way}_max_s"] = round(max(latencies), 3)
    figures["feedback_all_p95_s"] = round(_percentile(every, 0.95), 3) if every else -1
    after = skipped = before = 0
    for address, at in in_force.items():
        message = second[address]
        if message.state == "skipped" and message.reason == "address suppressed":
            skipped += 1
        elif message.sent_at and message.sent_at > at:
            after += 1
        else:
            before += 1
    figures["feedback_sent_after_suppression"] = after
    figures["feedback_skipped_as_suppressed"] = skipped
    figures["feedback_sent_before_suppression"] = before
    return figures
