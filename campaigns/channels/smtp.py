"""Django's SMTP e-mail backend with a two-phase send for the ledger.

`send_two_phase` speaks MAIL / RCPT / DATA itself (smtplib has no hook between the message body
and its terminating "."), calls the hand-off with the write of "." as the point of no return, and
classifies the answers: 4xx and connection trouble are transient, 5xx permanent. Used as an
ordinary Django backend it behaves exactly like Django's.
"""

import functools
import re
import smtplib
import socket

from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.message import sanitize_address

from campaigns.channels import HandOff, Outcome

_LEADING_DOT = re.compile(rb"(?m)^\.")

_PLAIN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def _quote(address: str) -> str:
    return f"<{address}>" if _PLAIN.fullmatch(address) else smtplib.quoteaddr(address)


# RCPT answers that mean the mailbox does not exist: the address is suppressed for good.
HARD_BOUNCES = {550, 551, 553}


class EmailBackend(DjangoSMTPBackend):
    def open(self) -> bool | None:
        opened = super().open()
        if self.connection is not None and self.connection.sock is not None:
            # The "." goes out alone right after the body: without this, Nagle's algorithm
            # holds it until the server's delayed ACK (~40 ms per message).
            self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return opened

    def send_two_phase(self, email_message, hand_off: HandOff) -> Outcome:
        """Sends a Django EmailMessage through the two-phase exchange."""
        encoding = email_message.encoding or "utf-8"
        return self.send_bytes(
            sender=sanitize_address(email_message.from_email, encoding),
            recipients=[sanitize_address(a, encoding) for a in email_message.recipients()],
            data=email_message.message().as_bytes(linesep="\r\n"),
            hand_off=hand_off,
        )

    def send_bytes(
        self, *, sender: str, recipients: list[str], data: bytes, hand_off: HandOff
    ) -> Outcome:
        """MAIL / RCPT / DATA with `data` (a complete message), "." after the hand-off."""
        try:
            if self.connection is None:
                self.open()
        except (OSError, smtplib.SMTPException) as exc:
            self.connection = None
            return Outcome("retry", f"cannot connect: {exc}")
        conn = self.connection
        if b"\n." in data or data.startswith(b"."):
            data = _LEADING_DOT.sub(b"..", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        try:
            conn.ehlo_or_helo_if_needed()
            refused = self._envelope(conn, sender, recipients)
            if refused is not None:
                return refused
            conn.send(data)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return Outcome("retry", f"connection failed before the message was complete: {exc}")

        # The end of DATA, bound ahead of time: the hand-off calls it the moment its commit is
        # on its way, with no other Python in between.
        terminate = functools.partial(conn.sock.sendall, b".\r\n")
        terminated = False
        try:
            hand_off(terminate)
            terminated = True
        except (OSError, smtplib.SMTPException) as exc:
            # The ledger says sent, but "." never reached the server: it kept nothing.
            self._drop()
            return Outcome(
                "retry", f"connection lost before end of data: {exc}", after_hand_off=True
            )
        except BaseException:
            if not terminated:
                self._drop()  # an unfinished DATA must not be completed by anyone
            raise
        try:
            code, answer = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:
            # The server had the whole message; whether it kept it we cannot know. Counting it
            # as sent can lose it, retrying could duplicate it: we never duplicate.
            self._drop()
            return Outcome("sent", f"no answer after end of data (counted as sent): {exc}")
        if code == 250:
            return Outcome("sent", provider_id=answer.decode(errors="replace")[:200])
        outcome = self._refused(code, answer, "end of data", reset=False)
        return Outcome(outcome.kind, outcome.reason, after_hand_off=True)

    def _envelope(self, conn: smtplib.SMTP, sender: str, recipients: list[str]) -> Outcome | None:
        """MAIL, RCPT..., DATA; None once the server waits for the message (354).

        With PIPELINING (RFC 2920) the commands go out in one write and the answers are read
        after, one round trip instead of 2 + recipients."""
        if conn.has_extn("pipelining"):
            lines = [f"MAIL FROM:{_quote(sender)}"]
            lines += [f"RCPT TO:{_quote(r)}" for r in recipients] + ["DATA"]
            conn.send(("\r\n".join(lines) + "\r\n").encode("utf-8"))
            answers = []
            for _ in lines:
                try:
                    answers.append(conn.getreply())
                except (OSError, smtplib.SMTPException):
                    # A 421 closes the connection (RFC 5321 4.2.2): its answer is the refusal
                    # (a provider's "421 4.7.28 ... rate limited" is read as throttling).
                    if answers and answers[-1][0] == 421:
                        break
                    raise
        else:
            answers = [conn.mail(sender)]
            if answers[0][0] == 250:
                answers += [conn.rcpt(r) for r in recipients]
            if all(code in (250, 251) for code, _ in answers):
                answers.append(conn.docmd("data"))
        (mail_code, mail_answer), *rest = answers
        data_code = rest[-1][0] if len(rest) == len(recipients) + 1 else None
        failure = None
        if mail_code != 250:
            failure = self._refused(mail_code, mail_answer, "MAIL", reset=False)
        else:
            for code, answer in rest[: len(recipients)]:
                if code not in (250, 251):
                    failure = self._refused(code, answer, "RCPT", reset=False)
                    if code in HARD_BOUNCES:
                        failure = Outcome("failed", failure.reason, suppress=True)
                    break
        if failure is None and data_code == 354:
            return None
        if failure is None:
            failure = self._refused(data_code or -1, rest[-1][1] if rest else b"", "DATA", False)
        if data_code == 354:
            self._drop()  # the server waits for a message we will not send
        else:
            self._reset()
        return failure

    def _reset(self) -> None:
        try:
            self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _refused(self, code: int, answer: bytes, stage: str, reset: bool = True) -> Outcome:
        reason = f"{stage}: {code} {answer.decode(errors='replace')}"[:300]
        if reset:
            self._reset()
        if 400 <= code < 500 or code == -1:
            return Outcome("retry", reason)
        return Outcome("failed", reason)

    def _drop(self) -> None:
        """Closes the connection without QUIT (a half-sent DATA is discarded by the server)."""
        if self.connection is not None:
            try:
                self.connection.sock and self.connection.sock.shutdown(socket.SHUT_RDWR)
                self.connection.close()
            except OSError:
                pass
        self.connection = None
