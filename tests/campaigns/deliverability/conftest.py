"""A local SMTP server in this process (aiosmtpd) that keeps every envelope it accepts whole:
return path, recipients and the message bytes as they arrived (the shared sink logs only the
recipient and Message-ID)."""

import smtplib
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from campaigns.deliverability.receiver import receiver
from campaigns.deliverability.services import sending_domain_create
from campaigns.models import Message
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done
from tests.conftest import free_port

SAMPLES = Path(__file__).resolve().parents[3] / "bench" / "data" / "deliverability"
# The return paths in our sample reports, replaced by a real message's in tests.
DSN_PATH = b"bounce+0f3c2a9b8d7e4f6a1b2c3d4e5f6a7b8c-aaaaaaaaaaaaaaaa@bounces.shop.example"
ARF_PATH = b"bounce+3c4d5e6f708192a3b4c5d6e7f8091a2b-dddddddddddddddd@bounces.shop.example"


class Keeper:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 2.0.0 OK"


@pytest.fixture
def keeper(settings):
    """The kept envelopes; Django's e-mail points at the server (retries made quick)."""
    handler = Keeper()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.CAMPAIGN_RETRY_BASE_SECONDS = 0.05
    settings.CAMPAIGN_RETRY_MAX_SECONDS = 0.2
    yield handler
    controller.stop()


@pytest.fixture
def lmtp():
    port = free_port()
    server = receiver(host="127.0.0.1", port=port)
    server.start()

    def deliver(report: bytes, to: str) -> dict:
        with smtplib.LMTP("127.0.0.1", port) as client:
            return client.sendmail("", [to], report.replace(b"\n", b"\r\n"))

    yield deliver
    server.stop()


@pytest.fixture
def sent(workspace, keeper):
    """{customer e-mail: (message, return path)} of a campaign to 2 customers, sent with VERP."""
    sending_domain_create(
        workspace=workspace, domain="shop.example", bounce_domain="bounces.shop.example"
    )
    campaign = make_campaign(workspace, make_audience(workspace, 2), from_email="news@shop.example")
    launch_now(campaign)
    deliver_until_done(campaign)
    paths = {rcpts[0]: path for path, rcpts, _ in keeper.envelopes}
    return {m.address: (m, paths[m.address]) for m in Message.objects.filter(campaign=campaign)}
