"""Reads: what a workspace's channels send through, secrets unsealed for the connection only.

The dataclasses' reprs leave the secrets out, so a config that ends up in a log line, an
exception or a TaskRun's output shows no password."""

from dataclasses import dataclass, field

from campaigns.models import SendingSettings
from marketing_ai import sealed

# Provider -> (the anymail backend, the keyword its key goes in).
ESP_BACKENDS = {
    SendingSettings.Provider.BREVO: ("anymail.backends.brevo.EmailBackend", "api_key"),
    SendingSettings.Provider.MAILGUN: ("anymail.backends.mailgun.EmailBackend", "api_key"),
    SendingSettings.Provider.POSTMARK: ("anymail.backends.postmark.EmailBackend", "server_token"),
    SendingSettings.Provider.RESEND: ("anymail.backends.resend.EmailBackend", "api_key"),
    SendingSettings.Provider.SENDGRID: ("anymail.backends.sendgrid.EmailBackend", "api_key"),
    SendingSettings.Provider.SPARKPOST: ("anymail.backends.sparkpost.EmailBackend", "api_key"),
}


@dataclass(frozen=True)
class EmailConfig:
    """provider "smtp" (host, port, security, username, password) or an ESP (api_key,
    api_url)."""

    provider: str
    host: str = ""
    port: int = 0
    security: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    api_url: str = ""

    @property
    def where(self) -> str:
        """Where the mail goes, in words (for staff; no secret)."""
        if self.provider == SendingSettings.Provider.SMTP:
            return f"the SMTP server {self.host}:{self.port}"
        return SendingSettings.Provider(self.provider).label.split(" (")[0]


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str = field(default="", repr=False)


def email_config(workspace_id: int | None) -> EmailConfig | None:
    """The workspace's own e-mail route, or None: the environment's (EMAIL_URL ...)."""
    if workspace_id is None:
        return None
    row = SendingSettings.objects.filter(workspace_id=workspace_id).first()
    if row is None or not row.email_provider:
        return None
    if row.email_provider == SendingSettings.Provider.SMTP:
        return EmailConfig(
            provider=row.email_provider,
            host=row.smtp_host,
            port=row.smtp_port,
            security=row.smtp_security,
            username=row.smtp_username,
            password=sealed.unseal(row.smtp_password_sealed),
        )
    return EmailConfig(
        provider=row.email_provider,
        api_key=sealed.unseal(row.esp_api_key_sealed),
        api_url=row.esp_api_url,
    )


def http_endpoint(workspace_id: int | None, kind: str) -> Endpoint | None:
    """The workspace's own SMS gateway or webhook endpoint (kind "sms" / "webhook"), or None."""
    if workspace_id is None:
        return None
    row = (
        SendingSettings.objects.filter(workspace_id=workspace_id)
        .values(f"{kind}_url", f"{kind}_secret_sealed")
        .first()
    )
    if not row or not row[f"{kind}_url"]:
        return None
    return Endpoint(url=row[f"{kind}_url"], secret=sealed.unseal(row[f"{kind}_secret_sealed"]))
