"""Signed tracking URLs: open pixel, click redirect, unsubscribe and preference pages.

Every URL carries the message's token and an HMAC (keyed by SECRET_KEY, one key per purpose),
so a tampered token or a click URL pointing somewhere we did not write is refused: the redirect
goes only to the exact URL that was signed into the e-mail (no open redirect). Links are signed
with SECRET_KEY and accepted under it or any of SECRET_KEY_FALLBACKS, so the links in e-mails
already sent keep working through a key rotation.
"""

import base64
import binascii
import hashlib
import hmac
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings


class _Signer:
    """value -> "value:signature", HMAC-SHA256 truncated to 128 bits, base64url.

    Django's Signer derives its key from the salt on every call; a campaign signs five or six
    URLs per message, so the per-purpose key is derived once here instead."""

    def __init__(self, salt: str) -> None:
        self.salt = salt

    @cache  # noqa: B019  (three module-level instances, one key each)
    def _key(self, secret: str) -> bytes:
        return hashlib.sha256(f"marketing_ai.{self.salt}:{secret}".encode()).digest()

    def _signature(self, value: str, secret: str) -> str:
        digest = hmac.new(self._key(secret), value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")

    def sign(self, value: str) -> str:
        return f"{value}:{self._signature(value, settings.SECRET_KEY)}"

    def unsign(self, signed: str) -> str:
        value, _, signature = signed.rpartition(":")
        if value:
            for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
                if hmac.compare_digest(signature, self._signature(value, secret)):
                    return value
        raise BadToken("bad signature")


_OPEN = _Signer("campaigns.open")
_CLICK = _Signer("campaigns.click")
_UNSUBSCRIBE = _Signer("campaigns.unsubscribe")


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


def _unsign(signer: _Signer, signed: str) -> str:
    return signer.unsign(signed)
