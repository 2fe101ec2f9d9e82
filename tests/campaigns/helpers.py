"""What the campaign tests share besides rows: a local SMTP server in its own process that logs
what it accepts (tests/smtp_sink.py, aiosmtpd), and waits on a campaign's progress."""

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from campaigns.models import Campaign, Message
from campaigns.services.delivery import deliver
from tests.conftest import ROOT, _port_open, free_port, wait_until
from tests.smtp_sink import read_log

PUBLIC = "93.184.216.34"  # a global address (example.com's, once); nothing here answers on it


class Sink:
    def __init__(self, tmp: Path, fail_rate: float = 0.0, fail_at: str = "data") -> None:
        self.port = free_port()
        self.log = tmp / f"sink-{self.port}.log"
        self.log.touch()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.smtp_sink",
                "--port",
                str(self.port),
                "--log",
                str(self.log),
                "--fail-rate",
                str(fail_rate),
                "--fail-at",
                fail_at,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
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


def deliver_until_done(campaign: Campaign, rounds: int = 40) -> None:
    """Runs delivery in this process until no row of the campaign waits; between rounds, retries
    come due (tests make them quick: smtp_settings)."""
    for _ in range(rounds):
        deliver(campaign_id=campaign.pk, budget_seconds=30)
        if not Message.objects.filter(campaign=campaign, state__in=("queued", "sending")).exists():
            return
        time.sleep(0.1)
    raise AssertionError("campaign did not finish")
