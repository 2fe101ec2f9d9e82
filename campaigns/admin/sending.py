"""A workspace's sending settings: its SMTP server or ESP, SMS gateway and webhook endpoint.

Secrets are write-only: the form's password boxes start empty ("set — leave empty to keep"),
what is typed is sealed (marketing_ai.sealed) before it is stored, and no page shows it back.
Hosts are held to the outbound rule (campaigns.outbound): an internal address is a form error
unless WEBHOOK_ALLOW_PRIVATE_NETWORKS allows it."""

from django import forms
from django.contrib import admin

from campaigns import outbound
from campaigns.models import SendingSettings
from crm.admin.scope import WorkspaceScopedAdmin
from marketing_ai import sealed

SECRETS = {
    "smtp_password": "smtp_password_sealed",
    "esp_api_key": "esp_api_key_sealed",
    "sms_secret": "sms_secret_sealed",
    "webhook_secret": "webhook_secret_sealed",
}


def _secret_box(label: str) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )


class SendingSettingsForm(forms.ModelForm):
    smtp_password = _secret_box("SMTP password")
    esp_api_key = _secret_box("ESP API key or server token")
    sms_secret = _secret_box("SMS gateway signing secret")
    webhook_secret = _secret_box("webhook signing secret")

    class Meta:
        model = SendingSettings
        fields = ["workspace", "email_provider", "smtp_host", "smtp_port", "smtp_security",
                  "smtp_username", "esp_api_url", "sms_url", "webhook_url"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, column in SECRETS.items():
            if self.instance.pk and getattr(self.instance, column):
                self.fields[name].help_text = "set — leave empty to keep"
            else:
                self.fields[name].help_text = "not set"

    def clean_smtp_host(self) -> str:
        host = self.cleaned_data["smtp_host"].strip().lower()
        if host:
            try:
                outbound.resolve(host, int(self.data.get("smtp_port") or 587))
            except outbound.Refused as exc:
                raise forms.ValidationError(
                    f"{exc}".removeprefix("refused: ")
                    + " (WEBHOOK_ALLOW_PRIVATE_NETWORKS allows internal hosts)"
                ) from exc
        return host

    def _url(self, name: str) -> str:
        url = self.cleaned_data[name].strip()
        problem = outbound.url_problem(url) if url else None
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_esp_api_url(self) -> str:
        return self._url("esp_api_url")

    def clean_sms_url(self) -> str:
        return self._url("sms_url")

    def clean_webhook_url(self) -> str:
        return self._url("webhook_url")

    def clean(self):
        data = super().clean()
        if data.get("email_provider") == SendingSettings.Provider.SMTP and not data.get(
            "smtp_host"
        ):
            self.add_error("smtp_host", "an SMTP server needs its host")
        return data

    def save(self, commit=True):
        row = super().save(commit=False)
        for name, column in SECRETS.items():
            typed = self.cleaned_data.get(name) or ""
            if typed:  # empty keeps what is stored
                setattr(row, column, sealed.seal(typed))
        if commit:
            row.save()
        return row


@admin.register(SendingSettings)
class SendingSettingsAdmin(WorkspaceScopedAdmin):
    form = SendingSettingsForm
    list_display = ["workspace", "email_provider", "smtp_host", "updated_at"]
