"""campaigns.deliverability.parse: DSNs, feedback reports and the odd formats as (address,
kind, status, excerpt, token) records; the sample reports are bench/data/deliverability's."""

import uuid
from functools import partial
from pathlib import Path

import pytest

from campaigns.deliverability import verp
from campaigns.deliverability.parse import parse

SAMPLES = Path(__file__).resolve().parents[3] / "bench" / "data" / "deliverability"
read_token = partial(verp.token_of, secrets=["test key"])


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def by_address(records):
    return {r.address: r for r in records}


def test_a_hard_bounce_dsn_names_the_address_status_and_reason():
    [record] = parse(sample("hard_user_unknown.eml"))
    assert (record.address, record.kind, record.status) == (
        "ghost.reader@mail.example.org",
        "hard",
        "5.1.1",
    )
    assert "User unknown" in record.excerpt and len(record.excerpt) <= 300
    assert "\n" not in record.excerpt


def test_each_recipient_block_counts_on_its_own_and_successes_do_not():
    records = by_address(parse(sample("mixed_recipients.eml")))
    assert set(records) == {"gone@corp.example", "later@corp.example"}
    assert records["gone@corp.example"].kind == "hard"
    assert (records["later@corp.example"].kind, records["later@corp.example"].status) == (
        "soft",
        "4.4.1",
    )


def test_delayed_is_soft_and_without_action_the_status_class_decides():
    [delayed] = parse(sample("soft_mailbox_full_delayed.eml"))
    assert (delayed.kind, delayed.status) == ("soft", "4.2.2")
    [greylisted] = parse(sample("soft_greylisted_no_action.eml"))
    assert (greylisted.address, greylisted.kind) == ("slow.lane@example.com", "soft")


def test_the_address_we_sent_to_wins_over_where_it_was_forwarded():
    [record] = parse(sample("hard_forwarded_original_recipient.eml"))
    assert record.address == "member@alumni.example"


@pytest.mark.parametrize("name", ["success_notice.eml", "auto_reply.eml", "not_spam_arf.eml"])
def test_reports_of_no_failure_give_nothing(name):
    assert parse(sample(name)) == []


def test_feedback_reports_are_complaints_with_the_recipient_from_report_or_original():
    [named] = parse(sample("complaint_arf.eml"))
    assert (named.address, named.kind, named.status) == (
        "angry.customer@mailbox.example",
        "complaint",
        "abuse",
    )
    [redacted] = parse(sample("complaint_arf_redacted.eml"))
    assert (redacted.address, redacted.kind) == ("some.reader@isp.example", "complaint")
    assert {r.address for r in parse(sample("complaint_two_reports.eml"))} == {
        "rcpt.one@bigmail.example",
        "rcpt.two@bigmail.example",
    }


def _to_return_path(raw: bytes, placeholder: bytes, address: str) -> bytes:
    assert placeholder in raw
    return raw.replace(placeholder, address.encode())


def test_a_signed_return_path_puts_its_token_on_every_record():
    token = uuid.uuid4().hex
    address = verp.return_path(token, "bounces.shop.example", "test key")
    raw = _to_return_path(
        sample("hard_user_unknown.eml"),
        b"bounce+0f3c2a9b8d7e4f6a1b2c3d4e5f6a7b8c-aaaaaaaaaaaaaaaa@bounces.shop.example",
        address,
    )
    [record] = parse(raw, read_token=read_token)
    assert record.token == token
    # The envelope recipient of the receiver counts as well as the report's headers.
    [record] = parse(sample("hard_no_domain.eml"), recipients=[address], read_token=read_token)
    assert record.token == token


def test_a_complaint_finds_the_return_path_in_the_returned_message():
    token = uuid.uuid4().hex
    address = verp.return_path(token, "bounces.shop.example", "test key")
    raw = _to_return_path(
        sample("complaint_arf.eml"),
        b"bounce+3c4d5e6f708192a3b4c5d6e7f8091a2b-dddddddddddddddd@bounces.shop.example",
        address,
    )
    [record] = parse(raw, read_token=read_token)
    assert (record.kind, record.token) == ("complaint", token)


def redacted(raw: bytes) -> bytes:
    """A feedback report whose loop hid the recipient (as Gmail's and Yahoo's do)."""
    raw = raw.replace(b"Original-Rcpt-To: <angry.customer@mailbox.example>\n", b"")
    return raw.replace(b"To: angry.customer@mailbox.example", b"To: undisclosed-recipients:;")


def test_a_complaint_with_the_recipient_redacted_counts_only_through_a_signed_path():
    assert parse(redacted(sample("complaint_arf.eml")), read_token=read_token) == []
    token = uuid.uuid4().hex
    address = verp.return_path(token, "bounces.shop.example", "test key")
    raw = _to_return_path(
        redacted(sample("complaint_arf.eml")),
        b"bounce+3c4d5e6f708192a3b4c5d6e7f8091a2b-dddddddddddddddd@bounces.shop.example",
        address,
    )
    [record] = parse(raw, read_token=read_token)
    assert (record.address, record.kind, record.token) == ("", "complaint", token)


def test_an_unsigned_or_forged_return_path_gives_no_token():
    # The samples' return paths look like ours but no key of ours signed them.
    [record] = parse(sample("hard_user_unknown.eml"), read_token=read_token)
    assert record.token is None and record.address == "ghost.reader@mail.example.org"


EXIM = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.nl>
To: news@shop.example
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: reader@example.nl
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  reader@example.nl
    SMTP error from remote mail server after RCPT TO:<reader@example.nl>:
    host mx.example.nl [192.0.2.7]: 550 5.1.1 unknown user
"""


def test_a_format_without_a_dsn_goes_to_the_detectors():
    [record] = parse(EXIM)
    assert (record.address, record.kind, record.status) == ("reader@example.nl", "hard", "5.1.1")
    assert "unknown user" in record.excerpt


X400_ONLY = b"""\
From: postmaster@exchange.example.com
To: news@shop.example
Subject: Undeliverable: Winter sale
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="x"

--x
Content-Type: text/plain

Your message did not reach some or all of the intended recipients.

Your message did not reach the following recipient(s):

reader@exchange.example.com on 01/12/2026 10:00
    The recipient name is not recognized
    MSEXCH:IMS:Example:EXCH01 0 (000C05A6) Unknown Recipient

--x
Content-Type: message/delivery-status

Reporting-MTA: x400; EXCH01

Final-Recipient: x400; c=us;a= ;p=Example;o=EXCH01;s=Reader;
Action: failed
Status: 5.1.1

--x--
"""


def test_a_dsn_naming_only_x400_recipients_is_read_from_its_text():
    [record] = parse(X400_ONLY)
    assert (record.address, record.kind) == ("reader@exchange.example.com", "hard")


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.eml")))
def test_cut_or_garbled_reports_never_raise(name):
    raw = sample(name)
    for end in range(0, len(raw), max(1, len(raw) // 12)):
        records = parse(raw[:end], read_token=read_token)
        assert all(r.kind in ("hard", "soft", "complaint") and "@" in r.address for r in records)
    garbled = raw.replace(b"\n", b"\n\xff\xfe ", 7).replace(b"boundary=", b"boundary=\x00", 1)
    parse(garbled, read_token=read_token)
