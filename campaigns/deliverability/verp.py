"""A return path per message: `bounce+<message token>-<signature>@<bounce domain>`.

A report that comes back to it names its message (and so its customer) by the token, whatever
the report itself says about addresses. The HMAC signature (keyed by SECRET_KEY, or any of its
fallbacks for mail sent before a rotation) means a report forged to an address we did not
write cannot name a message. Token and signature are lower-case hex and base32 because some
servers fold the local part's case.
"""

import base64
import hashlib
import hmac
import re

PREFIX = "bounce"
_LOCAL = re.compile(rf"{PREFIX}\+(?P<token>[0-9a-f]{{32}})-(?P<signature>[a-z2-7]{{16}})")


def _signature(token: str, secret: str) -> str:
    key = hashlib.sha256(f"marketing_ai.campaigns.verp:{secret}".encode()).digest()
    digest = hmac.new(key, token.encode(), hashlib.sha256).digest()[:10]  # 80 bits
    return base64.b32encode(digest).decode().lower()


def return_path(token: str, domain: str, secret: str) -> str:
    """The envelope sender for the message whose token (32 hex digits) is `token`."""
    token = token.lower()
    if not re.fullmatch(r"[0-9a-f]{32}", token):
        raise ValueError(f"not a message token: {token[:40]!r}")
    return f"{PREFIX}+{token}-{_signature(token, secret)}@{domain.lower()}"


def token_of(address: str, secrets: list[str]) -> str | None:
    """The message token a return path carries, if one of `secrets` signed it; else None."""
    address = (address or "").strip().strip("<>").lower()
    local, _, _ = address.rpartition("@")
    found = _LOCAL.fullmatch(local)
    if not found:
        return None
    token, signature = found["token"], found["signature"]
    for secret in secrets:
        if hmac.compare_digest(signature, _signature(token, secret)):
            return token
    return None
