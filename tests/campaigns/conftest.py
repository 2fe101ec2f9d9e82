"""Campaign fixtures: an audience with consent, a campaign with an approved variant, and a local
SMTP server (tests/smtp_sink.py, aiosmtpd) in its own process that counts what it accepts."""

import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Message, Variant
from campaigns.services.variants import variant_approve
from crm.models import Consent, Customer, Segment, SegmentMembership, Workspace
from tests.conftest import ROOT, _port_open, free_port, wait_until
from tests.smtp_sink import read_log

HTML = (
    "<html><body><h1>Hello {{ customer.first_name }}</h1>"
    '<p>Our <a href="https://shop.example.com/new?a=1&amp;b=2">new collection</a> is here.</p>'
    "</body></html>"
)


class Sink:
    def __init__(self, tmp: Path, fail_rate: float = 0.0, fail_at: str = "data") -> None:
        self.port = free_port()
        self.log = tmp / f"sink-{self.port}.log"
        self.log.touch()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.smtp_sink", "--port", str(self.port),
             "--log", str(self.log), "--fail-rate", str(fail_rate), "--fail-at", fail_at],
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: _port_open(self.port), timeout=15)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def received(self) -> Counter:
        return Counter(rcpt for rcpt, _ in read_log(str(self.log)))

    def count(self) -> int:
        with open(self.log) as f:
            return sum(1 for _ in f)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def sink_factory(tmp_path):
    sinks = []

    def make(**kwargs) -> Sink:
        sinks.append(Sink(tmp_path, **kwargs))
        return sinks[-1]

    yield make
    for s in sinks:
        s.stop()


@pytest.fixture
def smtp_settings(settings):
    """Points Django's e-mail at a sink and makes retries quick."""

    def use(sink: Sink) -> None:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.CAMPAIGN_RETRY_BASE_SECONDS = 0.05
        settings.CAMPAIGN_RETRY_MAX_SECONDS = 0.2

    return use


def make_audience(workspace: Workspace, n: int, *, consent: str = "subscribed",
                  name: str = "Everyone", prefix: str = "person") -> Segment:  # fmt: skip
    customers = Customer.objects.bulk_create([
        Customer(workspace=workspace, email=f"{prefix}{i}@example.com", first_name=f"P{i}",
                 time_zone="Europe/London")
        for i in range(n)
    ])  # fmt: skip
    now = timezone.now()
    Consent.objects.bulk_create(
        [Consent(customer=c, channel="email", status=consent, updated_at=now) for c in customers]
    )
    segment = Segment.objects.create(workspace=workspace, name=name, kind=Segment.Kind.STATIC)
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, customer=c) for c in customers]
    )
    return segment


def make_campaign(workspace: Workspace, segment: Segment, *, variants: int = 1,
                  **fields) -> Campaign:  # fmt: skip
    campaign = Campaign.objects.create(workspace=workspace, name=fields.pop("name", "Spring"),
                                       **fields)  # fmt: skip
    campaign.include_segments.add(segment)
    for i in range(variants):
        variant = Variant.objects.create(
            campaign=campaign, name="AB"[i] if variants <= 2 else str(i),
            subject=f"Variant {i}: for {{{{ customer.first_name }}}}", body_html=HTML,
        )  # fmt: skip
        variant_approve(variant=variant)
    return campaign


def wait_for_status(campaign: Campaign, status: str, timeout: float = 120) -> Campaign:
    def reached():
        campaign.refresh_from_db()
        return campaign.status == status

    wait_until(reached, timeout=timeout, interval=0.2)
    return campaign


def expected_recipients(campaign: Campaign) -> set[str]:
    """Addresses of every row that must be delivered (not holdout, not skipped at launch)."""
    return set(
        Message.objects.filter(campaign=campaign, holdout=False)
        .exclude(state=Message.State.SKIPPED)
        .values_list("customer__email", flat=True)
    )


@pytest.fixture
def workspace(db):
    return Workspace.objects.create(slug="shop", name="Shop")


def settle(seconds: float = 0.3) -> None:
    time.sleep(seconds)


PUBLIC = "93.184.216.34"  # a global address (example.com's, once); nothing here answers on it
_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def dns(monkeypatch):
    """name -> list of answers, one used per lookup (the last one repeats); other names go to
    the real resolver, as do the IP literals urllib3 looks up when it connects."""
    table: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        answers = table.get(host.lower() if isinstance(host, str) else host)
        if answers is None:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table
