"""Reads for sending: which key signs a message and where its reports come back."""

from dataclasses import dataclass

from django.conf import settings

from campaigns.deliverability import signing, verp
from campaigns.models import SendingDomain
from marketing_ai import sealed


@dataclass(frozen=True)
class SendingSetup:
    signer: signing.Signer | None  # None: the message goes out unsigned
    bounce_domain: str  # "": no VERP, the envelope sender stays the From address


def _parents(domain: str) -> list[str]:
    labels = domain.lower().split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def sending_setup(*, workspace_id: int | None, from_domain: str) -> SendingSetup:
    """The workspace's sending domain for `from_domain` (itself or the nearest parent: d=
    shop.example aligns with news.shop.example under DMARC's relaxed rule), as a signer if it
    signs, and its bounce domain (or CAMPAIGN_BOUNCE_DOMAIN). Raises sealed.Unsealable where
    its key was sealed under a key no longer configured."""
    default_bounce = getattr(settings, "CAMPAIGN_BOUNCE_DOMAIN", "")
    if workspace_id is None or not from_domain:
        return SendingSetup(None, default_bounce)
    candidates = _parents(from_domain)
    rows = {
        row.domain: row
        for row in SendingDomain.objects.filter(workspace_id=workspace_id, domain__in=candidates)
    }
    row = next((rows[d] for d in candidates if d in rows), None)
    if row is None:
        return SendingSetup(None, default_bounce)
    signer = (
        signing.Signer(
            domain=row.domain, selector=row.selector, private_pem=sealed.unseal(row.private_key)
        )
        if row.signing
        else None
    )
    return SendingSetup(signer, row.bounce_domain or default_bounce)


def dns_records_for(sending_domain: SendingDomain) -> list[signing.DnsRecord]:
    """What staff publish for a sending domain (its bounce domain's SPF and MX included)."""
    return signing.dns_records(
        domain=sending_domain.domain,
        selector=sending_domain.selector,
        public_b64=sending_domain.public_key,
        bounce_domain=sending_domain.bounce_domain
        or getattr(settings, "CAMPAIGN_BOUNCE_DOMAIN", ""),
        mail_host=getattr(settings, "EMAIL_HOST", ""),
    )


def verp_secrets() -> list[str]:
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


def message_token_of(address: str) -> str | None:
    """The message token a return path of ours carries (signed with our key), else None."""
    return verp.token_of(address, verp_secrets())
