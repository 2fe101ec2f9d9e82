"""A local SMTP server in this process (aiosmtpd) that keeps every envelope it accepts whole:
return path, recipients and the message bytes as they arrived (the shared sink logs only the
recipient and Message-ID)."""

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port


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
