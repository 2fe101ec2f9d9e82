"""E-mail through Django's e-mail backends.

With the SMTP backend (ours, or Django's, which ours extends) a message is handed off right
before the end of DATA, so it is sent exactly once; it goes out DKIM-signed where its workspace
signs for the From domain, with a VERP return path where a bounce domain is set
(campaigns.deliverability). Any other backend (an ESP through
django-anymail, the console or file backend) is called first and the ledger committed after it
succeeded: a worker killed in between sends that one message again, with the same Message-ID.

A workspace with sending settings of its own (campaigns.sending) sends through its SMTP server,
by the same two-phase exchange, or its ESP; the others through the environment's backend.
"""

import smtplib
from dataclasses import dataclass, field

import dkim
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.message import sanitize_address

from campaigns import tracking
from campaigns.channels import Channel, HandOff, Outcome, Outgoing, mime
from campaigns.channels.smtp import EmailBackend as TwoPhaseBackend
from campaigns.deliverability import selectors as deliverability
from campaigns.deliverability import verp
from campaigns.sending import backends as sending_backends
from campaigns.sending import config as sending_config
from marketing_ai import sealed


@dataclass(frozen=True)
class _Route:
    backend: object
    two_phase: bool
    problem: str = ""  # set: nothing can be sent this way (a retry says why)
    secret: str = field(default="", repr=False)  # kept out of the reasons logged

    def redact(self, reason: str) -> str:
        return reason.replace(self.secret, "[secret]") if self.secret else reason


def _close(backend) -> None:
    try:
        backend.close()
    except (OSError, smtplib.SMTPException):
        pass


class EmailChannel(Channel):
    kind = "email"

    def __init__(self) -> None:
        backend = get_connection(fail_silently=False)
        if isinstance(backend, DjangoSMTPBackend) and not isinstance(backend, TwoPhaseBackend):
            backend = TwoPhaseBackend(fail_silently=False)
        self.backend = backend  # the environment's (EMAIL_URL / EMAIL_BACKEND)
        self.two_phase = isinstance(backend, TwoPhaseBackend)
        self._senders: dict[str, tuple[str, str]] = {}
        self._setups: dict[tuple, deliverability.SendingSetup] = {}
        self._routes: dict[int | None, _Route] = {}

    def open(self) -> None:
        if not self.two_phase:
            self.backend.open()
        # The SMTP connection opens on first use, so a dead server is a retry, not a crash.

    def close(self) -> None:
        for route in self._routes.values():
            if route.backend is not None and route.backend is not self.backend:
                _close(route.backend)
        _close(self.backend)

    def route(self, workspace_id: int | None) -> "_Route":
        """The backend a workspace's mail goes through: its own sending settings' (an SMTP
        server, an ESP) or the environment's; looked up once a run."""
        if workspace_id not in self._routes:
            try:
                config = sending_config.email_config(workspace_id)
            except sealed.Unsealable as exc:  # staff can enter the password again
                self._routes[workspace_id] = _Route(None, False, f"sending settings: {exc}")
                return self._routes[workspace_id]
            if config is None:
                self._routes[workspace_id] = _Route(self.backend, self.two_phase)
            else:
                backend = sending_backends.email_backend(config)
                two_phase = isinstance(backend, TwoPhaseBackend)
                if not two_phase:
                    backend.open()  # one session for the run (anymail closes what it opened)
                secret = config.password or config.api_key
                self._routes[workspace_id] = _Route(backend, two_phase, secret=secret)
        return self._routes[workspace_id]

    def address_of(self, customer) -> str:
        return (customer.email or "").strip().lower()

    def headers(self, outgoing: Outgoing) -> dict:
        unsubscribe = outgoing.metadata.get("unsubscribe_url") or tracking.unsubscribe_url(
            outgoing.token
        )
        return {
            "Message-ID": f"<{outgoing.token}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>",
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058
            **outgoing.headers,
        }

    def build(self, outgoing: Outgoing) -> EmailMultiAlternatives:
        """The message as Django's e-mail class (for any backend)."""
        headers = self.headers(outgoing)
        message = EmailMultiAlternatives(
            subject=outgoing.subject,
            body=outgoing.text,
            from_email=outgoing.from_email or settings.DEFAULT_FROM_EMAIL,
            to=[outgoing.address],
            headers=headers,
        )
        if outgoing.html:
            message.attach_alternative(outgoing.html, "text/html")
        return message

    def send(self, outgoing: Outgoing, hand_off: HandOff) -> Outcome:
        route = self.route(outgoing.workspace_id)
        if route.problem:
            return Outcome("retry", route.problem)
        if route.two_phase:
            return self._send_smtp(route.backend, outgoing, hand_off)
        message = self.build(outgoing)
        try:
            sent = route.backend.send_messages([message])
        except Exception as exc:  # ESP errors have no common base; all are worth a retry
            return Outcome("retry", route.redact(f"{type(exc).__name__}: {exc}"))
        if not sent:
            return Outcome("retry", "the backend sent nothing")
        anymail = getattr(message, "anymail_status", None)
        provider_id = str(getattr(anymail, "message_id", "") or "")
        hand_off(lambda: None, provider_id)
        return Outcome("sent", provider_id=provider_id)

    def _setup(self, workspace_id: int | None, envelope_from: str):
        """Signer and bounce domain for this workspace's From domain, looked up once a run."""
        domain = envelope_from.rpartition("@")[2].strip(">").lower()
        key = (workspace_id, domain)
        if key not in self._setups:
            self._setups[key] = deliverability.sending_setup(
                workspace_id=workspace_id, from_domain=domain
            )
        return self._setups[key]

    def _send_smtp(self, backend, outgoing: Outgoing, hand_off: HandOff) -> Outcome:
        sender = outgoing.from_email or settings.DEFAULT_FROM_EMAIL
        if sender not in self._senders:
            self._senders[sender] = (mime.address(sender), sanitize_address(sender, "utf-8"))
        header_from, envelope_from = self._senders[sender]
        try:
            setup = self._setup(outgoing.workspace_id, envelope_from)
        except sealed.Unsealable as exc:  # never unsigned instead: DMARC would fail it
            return Outcome("retry", f"DKIM key: {exc}")
        if setup.bounce_domain:
            envelope_from = verp.return_path(
                outgoing.token, setup.bounce_domain, settings.SECRET_KEY
            )
        headers = self.headers(outgoing)
        message_id = headers.pop("Message-ID")
        try:
            data = mime.build(
                sender=header_from,
                to=outgoing.address,
                subject=outgoing.subject,
                text=outgoing.text,
                html=outgoing.html,
                message_id=message_id,
                boundary=outgoing.token,
                headers=headers,
            )
            recipient = (
                outgoing.address
                if mime.PLAIN.fullmatch(outgoing.address)
                else sanitize_address(outgoing.address, "utf-8")
            )
        except ValueError as exc:  # a line break in a header, an unusable address
            return Outcome("failed", f"cannot build the message: {exc}")
        if setup.signer is not None:
            try:
                data = setup.signer.sign(data)
            except dkim.DKIMException as exc:  # a key dkimpy cannot use: staff can replace it
                return Outcome("retry", f"DKIM signing failed: {exc}")
        return backend.send_bytes(
            sender=envelope_from, recipients=[recipient], data=data, hand_off=hand_off
        )
