"""Signed tracking URLs: open pixel, click redirect, unsubscribe and preference pages.

Every URL carries the message's token and an HMAC (Django's Signer, keyed by SECRET_KEY, salted
per purpose), so a tampered token or a click URL pointing somewhere we did not write is refused:
the redirect goes only to the exact URL that was signed into the e-mail (no open redirect).
"""

import base64
import binascii
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing

_OPEN = signing.Signer(salt="campaigns.open")
_CLICK = signing.Signer(salt="campaigns.click")
_UNSUBSCRIBE = signing.Signer(salt="campaigns.unsubscribe")


class BadToken(Exception):
    """A tracking token that was altered, truncated or made for another purpose."""


def _base() -> str:
    return settings.PUBLIC_URL.rstrip("/")


def open_url(message_token: str) -> str:
    return f"{_base()}/t/o/{_OPEN.sign(message_token)}.gif"


def click_url(message_token: str, url: str) -> str:
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return f"{_base()}/t/c/{_CLICK.sign(f'{message_token}.{encoded}')}"


def unsubscribe_url(message_token: str) -> str:
    return f"{_base()}/u/{_UNSUBSCRIBE.sign(message_token)}"


def preferences_url(message_token: str) -> str:
    return f"{_base()}/preferences/{_UNSUBSCRIBE.sign(message_token)}"


def read_open(signed: str) -> str:
    return _unsign(_OPEN, signed)


def read_unsubscribe(signed: str) -> str:
    return _unsign(_UNSUBSCRIBE, signed)


def read_click(signed: str) -> tuple[str, str]:
    """(message token, target URL) of a click token; BadToken unless signed by us and http(s)."""
    value = _unsign(_CLICK, signed)
    token, _, encoded = value.partition(".")
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadToken("undecodable link") from exc
    if urlsplit(url).scheme not in ("http", "https"):
        raise BadToken("not a web link")
    return token, url


def _unsign(signer: signing.Signer, signed: str) -> str:
    try:
        return signer.unsign(signed)
    except signing.BadSignature as exc:
        raise BadToken("bad signature") from exc
