"""The sending settings page: secrets write-only and sealed, hosts held to the outbound rule."""

import pytest
from django.db import connection

from campaigns.models import SendingSettings
from marketing_ai import sealed

URL = "/admin/campaigns/sendingsettings/"


def _form(workspace, **changes) -> dict:
    return {
        "workspace": workspace.pk,
        "email_provider": "smtp",
        "smtp_host": "smtp.example.com",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": "shop",
        "smtp_password": "",
        "esp_api_key": "",
        "sms_secret": "",
        "webhook_secret": "",
        **changes,
    }


@pytest.mark.django_db
def test_a_password_is_stored_sealed_never_shown_and_kept_when_left_empty(
    admin_client, workspace, dns
):
    dns["smtp.example.com"] = ["93.184.216.34"]
    made = admin_client.post(f"{URL}add/", _form(workspace, smtp_password="pw-Very-S3cret"))
    assert made.status_code == 302, made.content[:2000]
    row = SendingSettings.objects.get(workspace=workspace)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM campaigns_sendingsettings WHERE id = %s", [row.pk])
        raw = " ".join(str(v) for v in cursor.fetchone())
    assert "pw-Very-S3cret" not in raw and sealed.unseal(row.smtp_password_sealed) == (
        "pw-Very-S3cret"
    )
    page = admin_client.get(f"{URL}{row.pk}/change/").content.decode()
    assert "pw-Very-S3cret" not in page and row.smtp_password_sealed not in page
    assert "set — leave empty to keep" in page
    admin_client.post(f"{URL}{row.pk}/change/", _form(workspace, smtp_username="other"))
    row.refresh_from_db()
    assert row.smtp_username == "other" and sealed.unseal(row.smtp_password_sealed) == (
        "pw-Very-S3cret"
    )


@pytest.mark.django_db
def test_an_internal_or_unknown_host_is_a_form_error_not_a_500(admin_client, workspace, dns):
    dns["relay.internal.example"] = ["10.0.0.5"]
    for host, said in (("127.0.0.1", "loopback"), ("relay.internal.example", "private")):
        answer = admin_client.post(f"{URL}add/", _form(workspace, smtp_host=host))
        assert answer.status_code == 200 and said in answer.content.decode()
    answer = admin_client.post(f"{URL}add/", _form(workspace, sms_url="https://127.0.0.1/sms"))
    assert answer.status_code == 200 and "loopback" in answer.content.decode()
    assert not SendingSettings.objects.exists()
