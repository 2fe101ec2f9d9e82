"""campaigns.services.delivery: sending a campaign's due messages in this process to a real SMTP
server (aiosmtpd in a subprocess): one message per recipient, refusals retried, unknown
mailboxes failed and suppressed, consent read again at send time."""

import pytest

from campaigns.models import Campaign, Message, Suppression
from crm.models import Consent, Customer
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done, expected_recipients

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]


def test_every_recipient_gets_one_message_and_the_campaign_finishes(
    workspace, sink_factory, smtp_settings
):
    sink = sink_factory()
    smtp_settings(sink)
    campaign = make_campaign(workspace, make_audience(workspace, 150), holdout_percent=10, seed=3)
    launch_now(campaign)
    deliver_until_done(campaign)
    received = sink.received()
    assert set(received) == expected_recipients(campaign)
    assert set(received.values()) == {1}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT and campaign.finished_at


def test_refusals_at_end_of_data_are_retried_until_accepted_once(
    workspace, sink_factory, smtp_settings
):
    sink = sink_factory(fail_rate=0.3, fail_at="data")
    smtp_settings(sink)
    campaign = make_campaign(workspace, make_audience(workspace, 80))
    launch_now(campaign)
    deliver_until_done(campaign)
    received = sink.received()
    assert set(received) == expected_recipients(campaign) and set(received.values()) == {1}
    assert Message.objects.filter(campaign=campaign, attempts__gt=1).count() > 5


def test_unknown_mailbox_fails_for_good_and_is_suppressed(workspace, sink_factory, smtp_settings):
    smtp_settings(sink_factory())
    segment = make_audience(workspace, 5, prefix="bounce")
    campaign = make_campaign(workspace, segment)
    launch_now(campaign)
    deliver_until_done(campaign)
    failed = Message.objects.filter(campaign=campaign, state="failed")
    assert failed.count() == 5 and "550" in failed.first().reason
    assert Suppression.objects.filter(workspace=workspace, reason="bounced").count() == 5


def test_consent_withdrawn_after_launch_is_respected_at_send_time(
    workspace, sink_factory, smtp_settings
):
    sink = sink_factory()
    smtp_settings(sink)
    campaign = make_campaign(workspace, make_audience(workspace, 10))
    launch_now(campaign)
    leaver = Customer.objects.filter(workspace=workspace).order_by("id").first()
    Consent.objects.filter(customer=leaver).update(status="unsubscribed")
    deliver_until_done(campaign)
    assert leaver.email not in sink.received()
    row = Message.objects.get(campaign=campaign, customer=leaver)
    assert row.state == "skipped" and row.reason == "no consent at send time"
