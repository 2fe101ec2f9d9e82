"""A workspace's own sending settings: its mail goes through its SMTP server (two-phase, once
per recipient), its password stays sealed in the database, and an internal host is refused
unless the operator allows private networks."""

import pytest
from django.db import connection

from campaigns.models import Message, SendingSettings
from marketing_ai import sealed
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done, expected_recipients

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]


def _own_smtp(workspace, port: int) -> SendingSettings:
    return SendingSettings.objects.create(
        workspace=workspace,
        email_provider="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_password_sealed=sealed.seal("s3cret-pw-do-not-show"),
    )


def test_a_workspace_sends_through_its_own_smtp_server_exactly_once(
    workspace, sink_factory, smtp_settings, settings
):
    smtp_settings(sink_factory())  # the environment's server: must receive nothing
    environment = settings.EMAIL_PORT
    own = sink_factory()
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the sink listens on loopback
    row = _own_smtp(workspace, own.port)
    assert row.smtp_port != environment
    campaign = make_campaign(workspace, make_audience(workspace, 20))
    launch_now(campaign)
    deliver_until_done(campaign)
    received = own.received()
    assert set(received) == expected_recipients(campaign) and set(received.values()) == {1}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT smtp_password_sealed FROM campaigns_sendingsettings WHERE id = %s", [row.pk]
        )
        raw = cursor.fetchone()[0]
    assert "s3cret" not in raw and sealed.unseal(raw) == "s3cret-pw-do-not-show"


def test_an_internal_smtp_host_is_refused_and_the_reason_names_no_secret(
    workspace, sink_factory, smtp_settings, settings
):
    smtp_settings(sink_factory())
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    settings.CAMPAIGN_MAX_ATTEMPTS = 1
    own = sink_factory()
    _own_smtp(workspace, own.port)
    campaign = make_campaign(workspace, make_audience(workspace, 3))
    launch_now(campaign)
    deliver_until_done(campaign)
    assert own.received() == {}
    reasons = set(Message.objects.filter(campaign=campaign).values_list("reason", flat=True))
    assert all("loopback" in r and "s3cret" not in r for r in reasons), reasons
