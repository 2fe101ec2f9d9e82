"""The address a public request came from, for rate limits.

X-Forwarded-For is written by whoever sends the request, so it is believed only as far as the
proxies named in TRUSTED_PROXIES wrote it: walk from REMOTE_ADDR leftwards through the header
while the hop is a trusted proxy; the first address that is not one is the client. Without
trusted proxies (the default) the header is ignored and REMOTE_ADDR is the client.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


@lru_cache(maxsize=4)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _trusted(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The client's address as given by the trusted proxy chain (see the module docstring)."""
    remote = request.META.get("REMOTE_ADDR", "")
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    if not networks or not _trusted(remote, networks):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    client = remote
    for hop in reversed([h for h in hops if h]):
        if not _trusted(client, networks):
            break
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            break  # a malformed hop: the last proxy that wrote a real address is what we know
    return client
