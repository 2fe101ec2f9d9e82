"""Reports that land in a mailbox, fetched over IMAP or POP3 (the stdlib's imaplib / poplib).

`mailbox_poll(mailbox)` reads up to a batch of messages, records each (reports.report_ingest,
committed on its own) and only then removes it from the mailbox: IMAP flags it \\Deleted (or
moves it to the done folder) and expunges at the end of the batch; POP3 marks it with DELE,
which the server applies at QUIT. A crash part-way leaves the unremoved messages where they
were, and the next poll records them again as nothing new: a report is recorded once per its
Message-ID (or a digest of its bytes), so it is acted on once.

A message that cannot be recorded (the database is away) stops the batch and stays in the
mailbox; one that states no failure, or names no message of ours, is removed (it would be read
again on every poll otherwise). The server's host is checked like any outbound address
(campaigns.outbound: no internal address unless WEBHOOK_ALLOW_PRIVATE_NETWORKS) and the
connection goes to the address checked.
"""

import imaplib
import logging
import poplib
import socket
import ssl
from dataclasses import dataclass

from django.utils import timezone

from campaigns import outbound
from campaigns.deliverability import reports
from campaigns.models import DeliveryReport
from campaigns.models.deliverability import BounceMailbox
from marketing_ai.sealed import unseal

logger = logging.getLogger(__name__)
BATCH = 200
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Polled:
    read: int  # messages fetched
    recorded: int  # new reports
    removed: int  # messages deleted or moved


def _connect(mailbox: BounceMailbox):
    address = str(outbound.resolve(mailbox.host, mailbox.port)[0])

    def create_socket(self, timeout):
        return socket.create_connection((address, self.port), timeout)

    # The plain client's socket pinned to the checked address; the TLS client's wraps it (its
    # _create_socket calls the plain one's) and still checks the certificate by host name.
    imap = mailbox.protocol == BounceMailbox.Protocol.IMAP
    plain, tls = (imaplib.IMAP4, imaplib.IMAP4_SSL) if imap else (poplib.POP3, poplib.POP3_SSL)
    pinned = type("Pinned", (plain,), {"_create_socket": create_socket})
    if not mailbox.use_tls:
        return pinned(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)
    client = type("PinnedTls", (tls, pinned), {})
    context = ssl.create_default_context()
    if imap:
        return client(mailbox.host, mailbox.port, ssl_context=context, timeout=TIMEOUT_SECONDS)
    return client(mailbox.host, mailbox.port, context=context, timeout=TIMEOUT_SECONDS)


def _ingest(mailbox: BounceMailbox, raw: bytes, source: str) -> int:
    return reports.report_ingest(
        raw=raw, recipients=[], source=source, workspace_id=mailbox.workspace_id
    ).recorded


def _poll_imap(mailbox: BounceMailbox, batch: int) -> Polled:
    client = _connect(mailbox)
    read = recorded = removed = 0
    try:
        client.login(mailbox.username, unseal(mailbox.password))
        status, _ = client.select(_quoted(mailbox.folder))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open folder {mailbox.folder!r}")
        # UNDELETED: what a crashed poll flagged but did not expunge is done already.
        _, found = client.uid("SEARCH", None, "UNDELETED")
        uids = (found[0] or b"").split()[:batch]
        try:
            for uid in uids:
                _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
                if raw is None:
                    continue
                read += 1
                recorded += _ingest(mailbox, raw, DeliveryReport.Source.IMAP)
                # Committed: now it may go.
                if mailbox.done_folder:
                    status, _ = client.uid("COPY", uid, _quoted(mailbox.done_folder))
                    if status != "OK":
                        raise imaplib.IMAP4.error(f"cannot copy to {mailbox.done_folder!r}")
                client.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
                removed += 1
        finally:
            if removed:
                client.expunge()
        client.logout()
    finally:
        _close(client)
    return Polled(read, recorded, removed)


def _poll_pop3(mailbox: BounceMailbox, batch: int) -> Polled:
    client = _connect(mailbox)
    read = recorded = removed = 0
    try:
        client.user(mailbox.username)
        client.pass_(unseal(mailbox.password))
        count, _ = client.stat()
        try:
            for number in range(1, min(count, batch) + 1):
                _, lines, _ = client.retr(number)
                read += 1
                recorded += _ingest(
                    mailbox, b"\r\n".join(lines) + b"\r\n", DeliveryReport.Source.POP3
                )
                client.dele(number)
                removed += 1
        finally:
            if removed:
                client.quit()  # the server applies the DELEs now (not at all if we crash)
    finally:
        _close(client)
    return Polled(read, recorded, removed)


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _close(client) -> None:
    sock = getattr(client, "sock", None)
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


def mailbox_poll(*, mailbox: BounceMailbox, batch: int = BATCH) -> Polled:
    """One poll of the mailbox; its outcome (or the error, shortened) is kept on the row."""
    poll = _poll_imap if mailbox.protocol == BounceMailbox.Protocol.IMAP else _poll_pop3
    error = ""
    try:
        polled = poll(mailbox, batch)
    except (OSError, imaplib.IMAP4.error, poplib.error_proto, outbound.Refused) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        logger.warning("bounce mailbox %s: %s", mailbox.pk, error)
        polled = None
    BounceMailbox.objects.filter(pk=mailbox.pk).update(
        last_polled_at=timezone.now(), last_error=error
    )
    if polled is None:
        raise MailboxError(error)
    return polled


class MailboxError(Exception):
    """The mailbox could not be read (connection, login, folder): kept on the row as well."""
