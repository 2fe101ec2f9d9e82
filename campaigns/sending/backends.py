"""Django e-mail backends built from a workspace's EmailConfig, held to the outbound rule.

A workspace's SMTP host or ESP address is typed by its staff, so like a webhook URL it must
not turn our workers into a client of the internal network (a database on 10.0.0.5, the
metadata service on 169.254.169.254): the host is resolved and checked by campaigns.outbound
at every connection, and the socket goes to the address checked, while TLS's SNI and
certificate check keep the name. WEBHOOK_ALLOW_PRIVATE_NETWORKS lifts the rule for local
relays and tests, as it does for webhooks.

SMTP goes through the two-phase backend (campaigns.channels.smtp), so a workspace's mail is
handed off to the ledger right before the end of DATA like the platform's own; an ESP goes
through its django-anymail backend, whose requests session is pinned the same way.
"""

import smtplib

from django.conf import settings
from django.core.mail import get_connection

from campaigns import outbound
from campaigns.channels.smtp import EmailBackend as TwoPhaseBackend
from campaigns.models import SendingSettings
from campaigns.sending.config import ESP_BACKENDS, EmailConfig


class _Pinned:
    """smtplib's connect, to the address campaigns.outbound checked (Refused, an OSError,
    otherwise: the backend reports it as a connection failure)."""

    def _get_socket(self, host, port, timeout):
        address = outbound.resolve(host, port)[0]
        return super()._get_socket(str(address), port, timeout)


class PinnedSMTP(_Pinned, smtplib.SMTP):
    pass


class PinnedSMTPSSL(_Pinned, smtplib.SMTP_SSL):
    pass


class WorkspaceSMTPBackend(TwoPhaseBackend):
    @property
    def connection_class(self):
        return PinnedSMTPSSL if self.use_ssl else PinnedSMTP


def email_backend(config: EmailConfig):
    """A closed backend for `config` (TwoPhaseBackend for SMTP, else anymail's)."""
    if config.provider == SendingSettings.Provider.SMTP:
        return WorkspaceSMTPBackend(
            host=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == SendingSettings.Security.STARTTLS,
            use_ssl=config.security == SendingSettings.Security.TLS,
            timeout=settings.EMAIL_TIMEOUT,
            fail_silently=False,
        )
    path, key_name = ESP_BACKENDS[config.provider]
    options = {key_name: config.api_key}
    if config.api_url:
        options["api_url"] = config.api_url
    backend = get_connection(path, fail_silently=False, **options)
    made = backend.create_session

    def pinned_session():
        session = made()
        session.trust_env = False  # no proxy from the environment: it would resolve the name
        adapter = outbound.PinnedAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    backend.create_session = pinned_session
    return backend
