"""The bounce receiver for self-hosters: a small LMTP server (aiosmtpd) that takes the reports
addressed to the bounce domains and records them (campaigns.deliverability.reports).

    python manage.py bounce_receiver --port 2424

Point the MX of each bounce domain at an MTA that hands its mail to this over LMTP (Postfix:
`transport_maps` with `lmtp:inet:127.0.0.1:2424`). RCPT to any other domain is refused; a
report we cannot record (the database is away) answers 451, so the MTA keeps it and tries
again; one we read but that names no message of ours is accepted and dropped (refusing it
would only bounce it back to whoever sent it).
"""

import asyncio
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from django.conf import settings
from django.db import connections

from campaigns.deliverability import reports
from campaigns.models import DeliveryReport, SendingDomain

logger = logging.getLogger(__name__)
MAX_REPORT_BYTES = 10_000_000


def bounce_domains() -> set[str]:
    """The domains whose mail is reports to us: CAMPAIGN_BOUNCE_DOMAIN and the sending
    domains' bounce domains."""
    domains = set(
        SendingDomain.objects.exclude(bounce_domain="").values_list("bounce_domain", flat=True)
    )
    default = getattr(settings, "CAMPAIGN_BOUNCE_DOMAIN", "")
    return {d.lower() for d in domains | ({default} if default else set())}


def _in_thread(function, *args, **kwargs):
    # The ORM is synchronous: each call runs in an executor thread, on a connection of its own
    # that it closes after (an idle pool thread would otherwise hold it open for good).
    try:
        return function(*args, **kwargs)
    finally:
        connections.close_all()


class ReportHandler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        loop = asyncio.get_running_loop()
        try:
            domains = await loop.run_in_executor(None, _in_thread, bounce_domains)
        except Exception:
            logger.exception("bounce receiver: cannot read the bounce domains")
            return "451 4.3.0 Temporary failure, try again later"
        if address.rpartition("@")[2].lower() not in domains:
            return "550 5.1.1 Not a bounce address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        """One answer per recipient, as LMTP wants."""
        loop = asyncio.get_running_loop()
        answers = []
        for recipient in envelope.rcpt_tos:
            try:
                done = await loop.run_in_executor(
                    None,
                    lambda r=recipient: _in_thread(
                        reports.report_ingest,
                        raw=envelope.original_content,
                        recipients=[r],
                        source=DeliveryReport.Source.LMTP,
                    ),
                )
            except Exception:
                logger.exception("bounce receiver: cannot record a report for %s", recipient)
                answers.append("451 4.3.0 Could not record the report, try again later")
                continue
            answers.append(f"250 2.0.0 {done.recorded} recorded, {done.repeated} already known")
        return "\r\n".join(answers)


class LMTPController(Controller):
    def factory(self):
        return LMTP(self.handler, **self.SMTP_kwargs)


def receiver(*, host: str, port: int) -> LMTPController:
    """The receiver, not yet started (`.start()` serves in a thread, `.stop()` ends it)."""
    return LMTPController(
        ReportHandler(), hostname=host, port=port, data_size_limit=MAX_REPORT_BYTES
    )
