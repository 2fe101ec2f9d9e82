"""Outbound HTTP that cannot be pointed into our own network (webhooks, SMS and webhook channels).

A URL someone else gives us (an integrator's webhook) must not make our workers call a database
admin page on 10.0.0.5 or the cloud metadata service on 169.254.169.254 and log the answer. So:

- only https (http too where WEBHOOK_ALLOW_HTTP is set), never port 0 or user:password@;
- every address the host name resolves to must be public (no loopback, private, link-local,
  unspecified, multicast or reserved address, nor an IPv6 form that embeds one), unless
  WEBHOOK_ALLOW_PRIVATE_NETWORKS is set for local integrations and tests;
- the check is made again at each request on the addresses just resolved, and the connection
  goes to the checked address (the Host header, TLS SNI and the certificate check keep the
  name), so a DNS answer that changes between the check and the connect gets nowhere;
- redirects are never followed, and callers log a short fixed reason, never the answer's body.

`url_problem(url)` checks a URL at registration; `session()` gives a requests session whose
every request is checked and pinned this way; `post()` sends through it without redirects.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(requests.RequestException):
    """The URL or an address its host resolves to is not allowed; str() is a short reason.

    A RequestException, so a caller that handles failed requests handles a refusal too."""


def address_problem(address: IPAddress) -> str | None:
    """What is wrong with connecting to `address` ("loopback address", ...), or None if public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_problem(embedded)
    for test, name in (
        ("is_loopback", "loopback"),
        ("is_unspecified", "unspecified"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
        # fec0::/10, deprecated (RFC 3879) but still routed inside some networks; Python
        # 3.11's is_private and is_global miss it. IPv6 only, hence the default.
        ("is_site_local", "site-local"),
    ):
        if getattr(address, test, False):
            return f"{name} address"
    if not address.is_global:  # shared (100.64/10), benchmarking, documentation ranges...
        return "non-public address"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (::ffff:a.b.c.d, 6to4, Teredo, NAT64), if any:
    ::ffff:127.0.0.1 reaches 127.0.0.1 but Python's is_loopback says False for it."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, each one checked; Refused if any is not allowed.

    All of them, not only the first: a name with one public and one internal address would
    otherwise reach the internal one whenever the resolver's order changes."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror; an unencodable or NUL name
        raise Refused("host name does not resolve") from exc
    addresses = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused("host name does not resolve")
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise Refused(f"refused: {problem}")
    return addresses


def _target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL we may call; Refused for another scheme or no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused("refused: malformed URL") from exc
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        raise Refused(f"refused: {parts.scheme or 'no'} scheme (allowed: {', '.join(allowed)})")
    if not parts.hostname:
        raise Refused("refused: no host")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def url_problem(url: str) -> str | None:
    """Why `url` may not receive our requests (a sentence for a form), or None if it may.

    Resolves the host now: a name that points at an internal address is refused at
    registration, and a name that does not resolve cannot be checked, so it is refused too."""
    try:
        _, host, port = _target(url)
        _address_parts_problem(url)
        resolve(host, port)
    except Refused as exc:
        reason = str(exc).removeprefix("refused: ")
        if reason.endswith("address"):
            return (
                f"{reason}: webhooks may only call public addresses "
                "(WEBHOOK_ALLOW_PRIVATE_NETWORKS allows private ones)"
            )
        if "scheme" in reason:
            return f"{reason}: use https (WEBHOOK_ALLOW_HTTP allows http)"
        return reason
    return None


def _address_parts_problem(url: str) -> None:
    """Refused for URL parts that can never be right for a webhook: port 0, where no server can
    listen, and user:password@, which would be stored and shown back with the endpoint (the
    receiver authenticates us by the signature made with the endpoint's secret)."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise Refused(
            "refused: a user name or password in the URL (user:password@host); "
            "receivers check the signature made with the endpoint's secret"
        )
    if parts.port == 0:
        raise Refused("refused: port 0, where no server can listen")


class PinnedAdapter(HTTPAdapter):
    """Resolves and checks the host at every request, then connects to the checked address.

    The URL keeps the name, so the Host header, TLS SNI and the certificate check use it;
    only the socket goes to the address we checked (urllib3's pool is keyed by it)."""

    def send(self, request, **kwargs):
        if kwargs.get("proxies"):
            # A proxy would resolve the name itself, after our check.
            raise Refused("refused: proxies are not used for outbound calls")
        _, host, port = _target(request.url)
        request.pinned_address = resolve(host, port)[0]
        netloc = urlsplit(request.url).netloc.rpartition("@")[2]
        request.headers["Host"] = netloc
        return super().send(request, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        name = host_params["host"]
        host_params["host"] = str(request.pinned_address)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = name  # SNI, and the certificate is checked for it
        return host_params, pool_kwargs


def session() -> requests.Session:
    """A requests session for URLs others gave us: every request checked and pinned."""
    s = requests.Session()
    s.trust_env = False  # no proxies or .netrc from the environment (see PinnedAdapter.send)
    adapter = PinnedAdapter()
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


def post(
    s: requests.Session,
    url: str,
    *,
    data: bytes | str,
    headers: dict,
    timeout: float,
    verify: bool | str = True,
) -> requests.Response:
    """POSTs through a session from `session()`; a redirect comes back as the 3xx response."""
    return s.post(
        url, data=data, headers=headers, timeout=timeout, allow_redirects=False, verify=verify
    )


def response_reason(response: requests.Response) -> str:
    """A short fixed reason for an answer that was not a success (never its body: the body
    of an internal page is what an attacker would want logged)."""
    code = response.status_code
    if 300 <= code < 400:
        return f"HTTP {code}: redirect not followed"
    return f"HTTP {code}"


def failure_reason(exc: requests.RequestException) -> str:
    """A short fixed reason for a request that got no answer."""
    if isinstance(exc, Refused):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return "request failed"
