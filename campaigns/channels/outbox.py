"""The development outbox: Django's file backend, one file per message instead of one per
run (a campaign's run wrote all its thousands of messages into one file, unreadable).

Each message is written whole as `<token>.eml` (the token of its Message-ID, so the admin's
*Sent mail* page finds the file of a ledger row) or, for mail without our Message-ID (a test
send), `<time>-<random>.eml`; into a temporary name first and then renamed, so a reader never
sees half a message. Any mail program opens the files."""

import os
import re
import secrets
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.utils import timezone

TOKEN = re.compile(r"<([0-9a-f]{32})@")


def file_name(message) -> str:
    match = TOKEN.match(str(message.extra_headers.get("Message-ID", "")))
    if match:
        return f"{match.group(1)}.eml"
    return f"{timezone.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}.eml"


def path_for(file_path, token: str) -> Path:
    """Where the message with `token` (hex) is, if the outbox holds it."""
    return Path(file_path) / f"{token}.eml"


class EmailBackend(FileBackend):
    # No stream of a run: the file backend's open() would start its one file per connection.
    def open(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def send_messages(self, email_messages) -> int:
        sent = 0
        with self._lock:
            for message in email_messages or ():
                path = Path(self.file_path) / file_name(message)
                partial = path.with_suffix(".part")
                partial.write_bytes(message.message().as_bytes(linesep="\n"))
                os.replace(partial, path)
                sent += 1
        return sent
