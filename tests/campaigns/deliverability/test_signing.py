"""campaigns.deliverability.signing: a signature dkimpy verifies against the record we tell
staff to publish, and that breaks when the message is altered."""

import dkim
import pytest

from campaigns.deliverability import signing


@pytest.fixture(scope="module")
def key():
    return signing.key_generate()


MESSAGE = (
    b"From: Shop <news@shop.example>\r\nTo: reader@mail.example.org\r\nSubject: Winter sale\r\n"
    b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <abc@shop.example>\r\n"
    b"MIME-Version: 1.0\r\nList-Unsubscribe: <https://shop.example/u/abc>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nEverything must go.\r\n"
)


def published(key, selector="s1", domain="shop.example"):
    """A resolver that answers with the DKIM record dns_records() shows, for its name only."""
    records = signing.dns_records(domain=domain, selector=selector, public_b64=key.public_b64)
    dkim_record = next(r for r in records if r.name.endswith("._domainkey." + domain))

    def dnsfunc(name, timeout=5):
        wanted = dkim_record.name + "."
        return dkim_record.value.encode() if name.decode().lower() == wanted else None

    return dnsfunc


def test_a_signed_message_verifies_and_covers_the_unsubscribe_headers(key):
    signed = signing.Signer(domain="shop.example", selector="s1", private_pem=key.private_pem).sign(
        MESSAGE
    )
    assert dkim.verify(signed, dnsfunc=published(key))
    header = signed.split(b"\r\n\r\n", 1)[0].lower()
    assert b"list-unsubscribe : list-unsubscribe-post" in header.replace(b"\r\n ", b" ")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"Everything must go.", b"Everything must go!"),
        lambda m: m.replace(b"Winter sale", b"Winter sa1e"),
        lambda m: m.replace(b"https://shop.example/u/abc", b"https://evil.example/u/abc"),
        # A second From added in transit: From is signed twice, so the added one breaks it.
        lambda m: m.replace(b"To: ", b"From: ceo@shop.example\r\nTo: ", 1),
    ],
)
def test_an_altered_message_fails(key, tamper):
    signer = signing.Signer(domain="shop.example", selector="s1", private_pem=key.private_pem)
    assert not dkim.verify(tamper(signer.sign(MESSAGE)), dnsfunc=published(key))


def test_another_key_under_the_published_name_fails(key):
    other = signing.key_generate(bits=1024)
    signed = signing.Signer(
        domain="shop.example", selector="s1", private_pem=other.private_pem
    ).sign(MESSAGE)
    assert not dkim.verify(signed, dnsfunc=published(key))


def test_the_records_name_spf_at_the_bounce_domain_when_there_is_one(key):
    records = signing.dns_records(
        domain="shop.example",
        selector="s1",
        public_b64=key.public_b64,
        bounce_domain="bounces.shop.example",
        mail_host="mx.shop.example",
    )
    by_name = {(r.name, r.type): r.value for r in records}
    assert by_name[("bounces.shop.example", "TXT")].startswith("v=spf1 a:mx.shop.example")
    assert by_name[("_dmarc.shop.example", "TXT")].startswith("v=DMARC1; p=none")
    assert by_name[("s1._domainkey.shop.example", "TXT")] == f"v=DKIM1; k=rsa; p={key.public_b64}"
    assert ("bounces.shop.example", "MX") in by_name


def test_a_loopback_or_ip_mail_host_is_never_suggested_for_mx_or_spf():
    for host in ("localhost", "127.0.0.1", "10.0.0.7", "::1"):
        records = signing.dns_records(
            domain="shop.example.com", selector="s1", public_b64="AAAA",
            bounce_domain="bounces.shop.example.com", mail_host=host,
        )  # fmt: skip
        by_type = {r.type: r.value for r in records if r.name == "bounces.shop.example.com"}
        assert by_type["MX"] == "10 your-bounce-receiver." and host not in by_type["TXT"]
    (mx,) = [
        r
        for r in signing.dns_records(
            domain="shop.example.com",
            selector="s1",
            public_b64="AAAA",
            bounce_domain="bounces.shop.example.com",
            mail_host="mx1.shop.example.com",
        )  # fmt: skip
        if r.type == "MX"
    ]
    assert mx.value == "10 mx1.shop.example.com."
