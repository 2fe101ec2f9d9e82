"""campaigns.deliverability.receiver: the LMTP bounce receiver, served for real (aiosmtpd) and
spoken to with smtplib, records each report on the message its signed return path names."""

import smtplib
from pathlib import Path

import pytest

from campaigns.deliverability.receiver import receiver
from campaigns.deliverability.services import sending_domain_create
from campaigns.models import DeliveryReport, Message
from tests.campaigns.factories import launch_now, make_audience, make_campaign
from tests.campaigns.helpers import deliver_until_done
from tests.conftest import free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]

SAMPLES = Path(__file__).resolve().parents[3] / "bench" / "data" / "deliverability"
DSN_PATH = b"bounce+0f3c2a9b8d7e4f6a1b2c3d4e5f6a7b8c-aaaaaaaaaaaaaaaa@bounces.shop.example"
ARF_PATH = b"bounce+3c4d5e6f708192a3b4c5d6e7f8091a2b-dddddddddddddddd@bounces.shop.example"


@pytest.fixture
def lmtp():
    port = free_port()
    server = receiver(host="127.0.0.1", port=port)
    server.start()

    def deliver(report: bytes, to: str) -> dict:
        with smtplib.LMTP("127.0.0.1", port) as client:
            return client.sendmail("", [to], report.replace(b"\n", b"\r\n"))

    yield deliver
    server.stop()


@pytest.fixture
def sent(workspace, keeper):
    """{customer e-mail: (message, return path)} of a campaign sent with VERP."""
    sending_domain_create(
        workspace=workspace, domain="shop.example", bounce_domain="bounces.shop.example"
    )
    campaign = make_campaign(workspace, make_audience(workspace, 2), from_email="news@shop.example")
    launch_now(campaign)
    deliver_until_done(campaign)
    paths = {rcpts[0]: path for path, rcpts, _ in keeper.envelopes}
    return {m.address: (m, paths[m.address]) for m in Message.objects.filter(campaign=campaign)}


def test_a_bounce_to_a_return_path_is_recorded_on_its_message_once(sent, lmtp):
    message, path = sent["person0@example.com"]
    report = (SAMPLES / "hard_user_unknown.eml").read_bytes().replace(DSN_PATH, path.encode())
    assert lmtp(report, path) == {}  # accepted for its one recipient
    [row] = DeliveryReport.objects.all()
    assert (row.message_id, row.kind, row.status, row.source) == (
        message.pk,
        "hard",
        "5.1.1",
        "lmtp",
    )
    # The report named another address (ghost.reader@...): the signed path says whose it was.
    assert row.address == "person0@example.com" and "ghost.reader@mail.example.org" in row.excerpt
    lmtp(report, path)  # the MTA delivers it again
    assert DeliveryReport.objects.count() == 1


def test_a_complaint_names_its_message_through_the_returned_copy(sent, lmtp):
    message, path = sent["person1@example.com"]
    report = (SAMPLES / "complaint_arf.eml").read_bytes().replace(ARF_PATH, path.encode())
    lmtp(report, "fbl@bounces.shop.example")
    [row] = DeliveryReport.objects.all()
    assert (row.message_id, row.kind, row.status) == (message.pk, "complaint", "abuse")


def test_forged_paths_record_nothing_and_other_domains_are_refused(sent, lmtp):
    message, path = sent["person0@example.com"]
    token = message.token.hex
    forged = path.replace(path.split("-")[-1].split("@")[0], "a" * 16)
    report = (SAMPLES / "hard_user_unknown.eml").read_bytes().replace(DSN_PATH, forged.encode())
    assert lmtp(report, forged) == {}  # accepted (refusing would bounce it to the forger) ...
    assert not DeliveryReport.objects.exists()  # ... and dropped
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        lmtp(report, f"bounce+{token}-aaaaaaaaaaaaaaaa@elsewhere.example")


def test_a_complaint_with_the_recipient_redacted_lands_on_the_message_its_path_names(sent, lmtp):
    message, path = sent["person1@example.com"]
    report = (SAMPLES / "complaint_arf.eml").read_bytes().replace(ARF_PATH, path.encode())
    report = report.replace(b"Original-Rcpt-To: <angry.customer@mailbox.example>\n", b"")
    report = report.replace(b"To: angry.customer@mailbox.example", b"To: undisclosed-recipients:;")
    lmtp(report, "fbl@bounces.shop.example")
    [row] = DeliveryReport.objects.all()
    assert (row.message_id, row.kind, row.address) == (message.pk, "complaint", message.address)
