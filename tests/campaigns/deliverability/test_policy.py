"""campaigns.deliverability.policy through the LMTP receiver: what a bounce or complaint does to
the address (suppressed, consent withdrawn), the customer's timeline and the campaign's results,
what lifting a suppression records, and a queued send to a suppressed address skipped (also
one suppressed while its chunk is already sending)."""

import threading

import pytest
from django.db import close_old_connections

from campaigns.deliverability import policy
from campaigns.models import Campaign, DeliveryReport, Message, Suppression
from campaigns.models.deliverability import DeliverabilityPolicy
from campaigns.services.results import campaign_stats
from crm.models import AuditEntry, Consent, Event
from crm.selectors import customer_timeline
from tests.campaigns.deliverability.conftest import ARF_PATH, DSN_PATH, SAMPLES
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done
from tests.conftest import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]
SOFT_PATH = b"bounce+1a2b3c4d5e6f708192a3b4c5d6e7f809-bbbbbbbbbbbbbbbb@bounces.shop.example"


def report(name: str, sample_path: bytes, path: str, report_id: str = "") -> bytes:
    raw = (SAMPLES / name).read_bytes().replace(sample_path, path.encode())
    return (f"Message-ID: <{report_id}@mx.example>\n".encode() + raw) if report_id else raw


def test_a_hard_bounce_suppresses_at_once_and_shows_on_timeline_and_results(sent, lmtp):
    message, path = sent["person0@example.com"]
    lmtp(report("hard_user_unknown.eml", DSN_PATH, path), path)
    [row] = Suppression.objects.all()
    assert (row.address, row.reason, row.report.status) == (
        "person0@example.com",
        "bounced",
        "5.1.1",
    )
    assert row.note.startswith("hard bounce 5.1.1")
    [event] = Event.objects.filter(type="email_bounce")
    assert (event.customer_id, event.properties["kind"]) == (message.customer_id, "hard")
    assert any(
        i.get("type") == "email_bounce" for i in customer_timeline(customer=message.customer)
    )
    stats = campaign_stats(campaign=message.campaign, attribute=False)
    assert stats["bounced"]["count"] == 1 and stats["bounced"]["rate"] == 0.5
    assert stats["complained"]["count"] == 0
    lmtp(report("hard_user_unknown.eml", DSN_PATH, path), path)  # delivered again: nothing new
    assert Event.objects.filter(type="email_bounce").count() == 1


def test_soft_bounces_suppress_after_the_workspaces_limit(sent, lmtp, workspace):
    DeliverabilityPolicy.objects.create(
        workspace=workspace, soft_bounce_limit=2, soft_bounce_days=3
    )
    _, path = sent["person0@example.com"]
    lmtp(report("soft_mailbox_full_delayed.eml", SOFT_PATH, path, "first"), path)
    assert not Suppression.objects.exists()
    lmtp(report("soft_mailbox_full_delayed.eml", SOFT_PATH, path, "first"), path)  # same report
    assert not Suppression.objects.exists()
    lmtp(report("soft_mailbox_full_delayed.eml", SOFT_PATH, path, "second"), path)
    [row] = Suppression.objects.all()
    assert row.reason == "bounced" and row.note.startswith("2 soft bounces in 3 days")


def test_a_complaint_suppresses_and_withdraws_consent_everywhere(sent, lmtp):
    message, path = sent["person1@example.com"]
    lmtp(report("complaint_arf.eml", ARF_PATH, path), "fbl@bounces.shop.example")
    [row] = Suppression.objects.all()
    assert (row.address, row.reason) == ("person1@example.com", "complained")
    consents = {
        c.channel: (c.status, c.source)
        for c in Consent.objects.filter(customer_id=message.customer_id)
    }
    assert consents["email"] == ("complained", "complaint")
    assert all(s == ("unsubscribed", "complaint") for ch, s in consents.items() if ch != "email")
    assert len(consents) > 1
    assert Event.objects.filter(type="email_complaint", customer_id=message.customer_id).exists()
    assert campaign_stats(campaign=message.campaign, attribute=False)["complained"]["count"] == 1


def test_lifting_a_suppression_is_audited_and_restarts_the_soft_count(sent, lmtp, workspace):
    DeliverabilityPolicy.objects.create(
        workspace=workspace, soft_bounce_limit=1, soft_bounce_days=7
    )
    _, path = sent["person0@example.com"]
    lmtp(report("soft_mailbox_full_delayed.eml", SOFT_PATH, path, "one"), path)
    suppression = Suppression.objects.get()
    with pytest.raises(ValueError):
        policy.suppression_lift(suppression=suppression, actor="staff", note="  ")
    policy.suppression_lift(suppression=suppression, actor="staff", note="mailbox emptied")
    assert not Suppression.objects.exists()
    [entry] = AuditEntry.objects.filter(action="suppression.lift")
    assert (entry.actor, entry.details["note"], entry.details["reason"]) == (
        "staff",
        "mailbox emptied",
        "bounced",
    )
    assert "person0@example.com" not in str(entry.details)  # ids, never the address
    assert DeliveryReport.objects.get().lifted_at is not None
    lmtp(report("soft_mailbox_full_delayed.eml", SOFT_PATH, path, "two"), path)
    assert Suppression.objects.get().note.startswith("1 soft bounces")


def test_a_queued_send_to_an_address_suppressed_meanwhile_is_skipped(sent, lmtp, workspace, keeper):
    message, path = sent["person0@example.com"]
    campaign = make_campaign(
        workspace,
        message.campaign.include_segments.get(),
        name="Again",
        from_email="news@shop.example",
    )
    launch_now(campaign)  # queued to both, not sent yet
    assert Message.objects.filter(campaign=campaign, state="queued").count() == 2
    lmtp(report("hard_user_unknown.eml", DSN_PATH, path), path)
    keeper.envelopes.clear()
    deliver_until_done(campaign)
    states = dict(Message.objects.filter(campaign=campaign).values_list("address", "reason"))
    assert states["person0@example.com"] == "address suppressed"
    assert [rcpts for _, rcpts, _ in keeper.envelopes] == [["person1@example.com"]]
    assert Campaign.objects.get(pk=campaign.pk).status in ("sending", "sent")


def test_a_suppression_recorded_while_a_paced_chunk_sends_applies_to_the_rest_of_it(
    workspace, keeper, settings
):
    settings.CAMPAIGN_RATE_LIMITS = {**settings.CAMPAIGN_RATE_LIMITS, "email": 2}
    campaign = make_campaign(workspace, make_audience(workspace, 6, prefix="paced"))
    launch_now(campaign)

    def suppress_the_rest_after_the_first_send():
        wait_until(lambda: keeper.envelopes, timeout=20, interval=0.01)
        sent = {rcpts[0] for _, rcpts, _ in keeper.envelopes}
        Suppression.objects.bulk_create(
            Suppression(workspace=workspace, channel="email", address=f"paced{i}@example.com",
                        reason="bounced") for i in range(6) if f"paced{i}@example.com" not in sent
        )  # fmt: skip
        close_old_connections()

    thread = threading.Thread(target=suppress_the_rest_after_the_first_send)
    thread.start()
    deliver_until_done(campaign)  # one chunk of 6 at 2/s: about 3 s
    thread.join()
    reasons = list(Message.objects.filter(campaign=campaign).values_list("reason", flat=True))
    skipped = reasons.count("address suppressed")
    assert skipped >= 2 and len(keeper.envelopes) + skipped == 6
