"""DKIM (RFC 6376) for the mail our SMTP path sends: RSA keys per sending domain, the DNS
records to publish for them, and the signature put on each message (dkimpy).

The signature covers the headers a receiver shows or acts on, From twice so that a second From
added on the way breaks it, and the one-click unsubscribe pair (RFC 8058 requires both signed).
Canonicalisation is relaxed/relaxed: relays that refold headers or strip trailing spaces do not
break it.
"""

import base64
import ipaddress
from dataclasses import dataclass

import dkim

KEY_BITS = 2048
SIGNED_HEADERS = (
    "From",
    "From",  # oversigned: a From added after signing fails verification
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


@dataclass(frozen=True)
class KeyPair:
    private_pem: str  # PKCS#1 PEM, what dkimpy signs with
    public_b64: str  # SubjectPublicKeyInfo, base64: the p= of the DNS record


def key_generate(bits: int = KEY_BITS) -> KeyPair:
    """A fresh RSA key pair (2048 bits: what Gmail and Yahoo expect, and what fits one TXT)."""
    # cryptography only makes the key: dkimpy signs with its own RSA code.
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415  (key making only)
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_pem=private, public_b64=base64.b64encode(public).decode())


def dkim_record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def dkim_record(public_b64: str) -> str:
    """The TXT record's value (one string; a DNS panel that limits strings to 255 characters
    splits it itself)."""
    return f"v=DKIM1; k=rsa; p={public_b64}"


@dataclass(frozen=True)
class DnsRecord:
    name: str
    type: str
    value: str
    why: str


def dns_records(
    *, domain: str, selector: str, public_b64: str, bounce_domain: str = "", mail_host: str = ""
) -> list[DnsRecord]:
    """What to publish for a sending domain: its DKIM key, and SPF and DMARC suggestions.

    SPF is checked against the envelope sender's domain, which is the bounce domain where
    VERP is on, so that is where the SPF record goes (and an MX, so reports reach us)."""
    spf_domain = bounce_domain or domain
    # A loopback host or an IP literal cannot be published as a host name (an MX must name one).
    named = mail_host if _publishable_host(mail_host) else ""
    allowed = f"a:{named} " if named else ""
    records = [
        DnsRecord(
            dkim_record_name(selector, domain),
            "TXT",
            dkim_record(public_b64),
            "the DKIM public key receivers check our signature against",
        ),
        DnsRecord(
            spf_domain,
            "TXT",
            f"v=spf1 {allowed}mx ~all",
            "SPF (suggestion): the hosts allowed to send for the envelope sender's domain; "
            "add your sending servers' ip4:/include: terms",
        ),
        DnsRecord(
            f"_dmarc.{domain}",
            "TXT",
            f"v=DMARC1; p=none; adkim=r; aspf=r; rua=mailto:dmarc-reports@{domain}",
            "DMARC (suggestion): start with p=none and read the reports, then quarantine",
        ),
    ]
    if bounce_domain:
        records.append(
            DnsRecord(
                bounce_domain,
                "MX",
                f"10 {named or 'your-bounce-receiver'}.",
                "where bounce reports to the return path are delivered (our receiver)",
            )
        )
    return records


def _publishable_host(host: str) -> bool:
    if not host or host == "localhost" or "." not in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


class Signer:
    """Signs messages for one domain with one key; reused across a delivery run."""

    def __init__(self, *, domain: str, selector: str, private_pem: str) -> None:
        self.domain = domain.encode()
        self.selector = selector.encode()
        self.key = private_pem.encode()
        self.headers = [h.encode() for h in SIGNED_HEADERS]

    def sign(self, message: bytes) -> bytes:
        """`message` (CRLF line ends) with its DKIM-Signature header in front."""
        header = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=self.headers,
            linesep=b"\r\n",
        )
        return header + message
