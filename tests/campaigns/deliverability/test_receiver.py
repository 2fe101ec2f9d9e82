"""campaigns.deliverability.receiver: the LMTP bounce receiver, served for real (aiosmtpd) and
spoken to with smtplib, records each report on the message its signed return path names."""

import smtplib

import pytest

from campaigns.models import DeliveryReport
from tests.campaigns.deliverability.conftest import ARF_PATH, DSN_PATH, SAMPLES

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sends_in_this_process"),
]


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
