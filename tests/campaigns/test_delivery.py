"""Launch and delivery in this process against a real SMTP server (aiosmtpd in a subprocess)."""

import email
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import ledger
from campaigns.channels import Outgoing, mime
from campaigns.channels.email import EmailChannel
from campaigns.models import Campaign, Message, Suppression, Variant
from campaigns.services import lifecycle, variants
from campaigns.services.delivery import deliver
from campaigns.services.recipients import build_ledger
from crm.models import Consent, Customer
from tests.campaigns.factories import make_audience, make_campaign
from tests.campaigns.helpers import expected_recipients

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sends_in_this_process():
    """Tasks that state changes queue (resume, resend) run here, against this test's SMTP server,
    not in the suite's shared worker (which has no way to reach it)."""
    from workers.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def launch_now(campaign: Campaign) -> dict:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    return build_ledger(campaign=campaign)


def deliver_until_done(campaign: Campaign, rounds: int = 40) -> None:
    import time

    for _ in range(rounds):
        deliver(campaign_id=campaign.pk, budget_seconds=30)
        if not Message.objects.filter(campaign=campaign, state__in=("queued", "sending")).exists():
            return
        time.sleep(0.1)
    raise AssertionError("campaign did not finish")


def test_launch_records_why_each_customer_is_skipped_and_draws_a_reproducible_holdout(workspace):
    segment = make_audience(workspace, 400)
    people = list(Customer.objects.filter(workspace=workspace).order_by("id"))
    Customer.objects.filter(pk__in=[p.pk for p in people[:3]]).update(email=None)
    Consent.objects.filter(customer__in=people[3:5]).update(status="unsubscribed")
    Suppression.objects.create(workspace=workspace, channel="email", address=people[5].email)
    one = make_campaign(workspace, segment, name="one", holdout_percent=20, seed=11)
    two = make_campaign(workspace, segment, name="two", holdout_percent=20, seed=11)
    counts = launch_now(one)
    launch_now(two)
    assert counts["audience"] == 400 and counts["skipped"] == 6
    reasons = dict(
        Message.objects.filter(campaign=one, state="skipped", holdout=False)
        .values_list("customer_id", "reason")
    )  # fmt: skip
    assert reasons[people[0].pk] == "no email address"
    assert reasons[people[3].pk] == "no consent"
    assert reasons[people[5].pk] == "address suppressed"
    held_one = set(
        Message.objects.filter(campaign=one, holdout=True).values_list("customer", flat=True)
    )
    held_two = set(
        Message.objects.filter(campaign=two, holdout=True).values_list("customer", flat=True)
    )
    assert held_one == held_two  # same seed, same customers
    assert 0.12 < len(held_one) / 394 < 0.28
    assert Message.objects.filter(campaign=one).count() == 400
    assert build_ledger(campaign=one) == {"already_written": True}  # a re-run writes nothing


def test_frequency_cap_counts_messages_from_other_campaigns(workspace, sink_factory, smtp_settings):
    smtp_settings(sink_factory())
    segment = make_audience(workspace, 20)
    first = make_campaign(workspace, segment, name="first")
    launch_now(first)
    deliver_until_done(first)
    second = make_campaign(workspace, segment, name="second", frequency_cap=1, frequency_days=7)
    counts = launch_now(second)
    assert counts["queued"] == 0 and counts["skipped"] == 20
    assert Message.objects.filter(campaign=second, reason__startswith="frequency cap").count() == 20


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


def test_pause_resume_cancel_and_resend_failed(workspace, sink_factory, smtp_settings):
    sink = sink_factory()
    smtp_settings(sink)
    campaign = make_campaign(workspace, make_audience(workspace, 30))
    launch_now(campaign)
    lifecycle.campaign_pause(campaign=campaign)
    deliver(campaign_id=campaign.pk, budget_seconds=5)
    assert sink.count() == 0
    with pytest.raises(lifecycle.CampaignError):
        lifecycle.campaign_pause(campaign=campaign)
    Message.objects.filter(campaign=campaign, customer__email="person0@example.com").update(
        state="failed", reason="simulated outage"
    )
    lifecycle.campaign_resume(campaign=campaign)
    deliver_until_done(campaign)
    assert sink.count() == 29
    assert lifecycle.campaign_resend_failed(campaign=campaign) == 1
    deliver_until_done(campaign)
    assert set(sink.received().values()) == {1} and sink.count() == 30
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    with pytest.raises(lifecycle.CampaignError):
        lifecycle.campaign_cancel(campaign=campaign)


def test_cancel_skips_what_was_not_sent(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 12))
    launch_now(campaign)
    assert lifecycle.campaign_cancel(campaign=campaign) == 12
    assert set(Message.objects.filter(campaign=campaign).values_list("reason", flat=True)) == {
        "cancelled"
    }


def test_a_worker_that_lost_its_claim_cannot_send(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 3))
    launch_now(campaign)
    claim, ids = ledger.claim_due(campaign_id=campaign.pk, now=timezone.now(), limit=10)
    assert len(ids) == 3
    # Its claim went stale; another worker took the row.
    ledger.release_stale(older_than=timezone.now() + timedelta(seconds=1))
    other, taken = ledger.claim_due(campaign_id=campaign.pk, now=timezone.now(), limit=10)
    called = []
    with pytest.raises(ledger.LostClaim):
        ledger.hand_off(message_id=ids[0], claim=claim, sent_at=timezone.now(), address="x",
                        provider_id="", point_of_no_return=lambda: called.append(1))  # fmt: skip
    assert not called
    ledger.hand_off(message_id=ids[0], claim=other, sent_at=timezone.now(), address="x",
                    provider_id="", point_of_no_return=lambda: called.append(1))  # fmt: skip
    assert called == [1] and Message.objects.get(pk=ids[0]).state == "sent"


def test_launch_refuses_incomplete_campaigns(workspace):
    campaign = Campaign.objects.create(workspace=workspace, name="empty", timing="local")
    with pytest.raises(lifecycle.CampaignError) as error:
        lifecycle.campaign_launch(campaign=campaign)
    assert {"include_segments", "variants", "local_time"} <= set(error.value.errors)


def test_approval_catches_template_errors(workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    bad = Variant.objects.create(campaign=campaign, name="bad", subject="x",
                                 body_html="<p>{% if %}</p>")  # fmt: skip
    with pytest.raises(lifecycle.CampaignError) as error:
        variants.variant_approve(variant=bad)
    assert "body_html" in error.value.errors
    bad.refresh_from_db()
    assert bad.status == Variant.Status.DRAFT


def test_email_is_multipart_with_one_click_unsubscribe_headers(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    channel = EmailChannel()
    outgoing = Outgoing(
        message_id=1,
        token="ab" * 16,
        address="ann@example.com",
        subject="Zoë’s picks",
        html="<p>Hi <b>Ann</b></p>",
        text="Hi Ann",
    )
    headers = channel.headers(outgoing)
    data = mime.build(sender="Shop <shop@example.com>", to=outgoing.address,
                      subject=outgoing.subject, text=outgoing.text, html=outgoing.html,
                      message_id=headers.pop("Message-ID"), boundary=outgoing.token,
                      headers=headers)  # fmt: skip
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == "Zoë’s picks"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"].startswith("<http") and "/u/" in parsed["List-Unsubscribe"]
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Hi <b>Ann</b></p>"
    with pytest.raises(mime.HeaderInjection):
        mime.build(sender="a@b.c", to="x@y.z", subject="hi\r\nBcc: all@example.com", text="t",
                   html="", message_id="<1@x>", boundary="b")  # fmt: skip
