"""Secrets kept encrypted at rest: a workspace's SMTP password, ESP key, gateway secrets.

`seal(text)` gives a Fernet token (AES-128-CBC with an HMAC-SHA256, from `cryptography`) to
store; `unseal(token)` gives the text back. The key comes from MARKETING_AI_SECRETS_KEY: any
string of 32+ random characters, from which the Fernet key is derived (HKDF-SHA256), so that
an operator does not have to produce Fernet's own format. Several keys, comma-separated,
rotate: the first seals, every one unseals (put the new key first, re-save, drop the old).

Unset outside production, the key is derived from SECRET_KEY under a label of its own; in
production the settings refuse to start without it, because a database dump and the
SECRET_KEY travel together more often than they should (backups, support copies) and the
sealed column is worth nothing if its key is in the same place.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_LABEL = b"marketing_ai sealed secrets v1"


class Unsealable(ValueError):
    """A stored secret no configured key opens (the key changed without a rotation)."""


def _derive(material: str, label: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(
        material.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


@functools.lru_cache(maxsize=8)
def _keys(configured: str, secret_key: str) -> MultiFernet:
    materials = [k.strip() for k in configured.split(",") if k.strip()]
    if not materials:  # development / test default: apart from the signing key's own uses
        return MultiFernet([_derive(secret_key, _LABEL + b" from SECRET_KEY")])
    return MultiFernet([_derive(m, _LABEL) for m in materials])


def _fernet() -> MultiFernet:
    return _keys(getattr(settings, "MARKETING_AI_SECRETS_KEY", ""), settings.SECRET_KEY)


def seal(text: str) -> str:
    """The token to store for `text` ("" stays "": nothing set)."""
    if not text:
        return ""
    return _fernet().encrypt(text.encode()).decode("ascii")


def unseal(token: str) -> str:
    """The text a token from `seal` holds; Unsealable where no configured key opens it."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise Unsealable(
            "a stored secret cannot be decrypted with MARKETING_AI_SECRETS_KEY "
            "(was the key changed without keeping the old one after it?)"
        ) from exc
