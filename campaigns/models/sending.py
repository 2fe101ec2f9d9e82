"""A workspace's own way out: its SMTP server or ESP, and its SMS and webhook endpoints.

Without a row (or with a part left empty) the workspace sends as the environment says
(EMAIL_URL / EMAIL_BACKEND, CAMPAIGN_SMS_URL, CAMPAIGN_WEBHOOK_URL). The *_sealed columns
hold marketing_ai.sealed tokens, never the secret itself; no form, page, log or API shows
them (campaigns.sending reads them for the channels)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from crm.models import Workspace


class SendingSettings(models.Model):
    class Provider(models.TextChoices):
        ENVIRONMENT = "", "the platform's own (EMAIL_URL / EMAIL_BACKEND)"
        SMTP = "smtp", "an SMTP server"
        BREVO = "brevo", "Brevo (API key)"
        MAILGUN = "mailgun", "Mailgun (API key)"
        POSTMARK = "postmark", "Postmark (server token)"
        RESEND = "resend", "Resend (API key)"
        SENDGRID = "sendgrid", "SendGrid (API key)"
        SPARKPOST = "sparkpost", "SparkPost (API key)"

    class Security(models.TextChoices):
        STARTTLS = "starttls", "STARTTLS (usually port 587)"
        TLS = "tls", "TLS from the start (usually port 465)"
        NONE = "none", "none (plain text: only for a relay on a private network)"

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="sending_settings"
    )
    email_provider = models.CharField(
        "e-mail goes out through", max_length=20, blank=True, choices=Provider.choices
    )
    smtp_host = models.CharField("SMTP host", max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField(
        "SMTP port", default=587, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    smtp_security = models.CharField(
        "SMTP security", max_length=10, choices=Security.choices, default=Security.STARTTLS
    )
    smtp_username = models.CharField("SMTP user name", max_length=254, blank=True)
    smtp_password_sealed = models.TextField(blank=True, editable=False)
    esp_api_key_sealed = models.TextField(blank=True, editable=False)
    esp_api_url = models.URLField(
        "ESP API address",
        blank=True,
        help_text="only where the provider has more than one (Mailgun's EU region: "
        "https://api.eu.mailgun.net/v3/); empty: the provider's default",
    )
    sms_url = models.URLField(
        "SMS gateway", blank=True, help_text="empty: the platform's (CAMPAIGN_SMS_URL)"
    )
    sms_secret_sealed = models.TextField(blank=True, editable=False)
    webhook_url = models.URLField(
        "webhook channel endpoint",
        blank=True,
        help_text="empty: the platform's (CAMPAIGN_WEBHOOK_URL)",
    )
    webhook_secret_sealed = models.TextField(blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sending settings"
        verbose_name_plural = "sending settings"

    def __str__(self) -> str:
        return f"Sending settings of {self.workspace}"
