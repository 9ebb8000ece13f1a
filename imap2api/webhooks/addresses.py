"""Where a webhook may be delivered: resolve the host once, refuse non-public addresses, pin the IP.

The check is made on the resolved address and the request then connects to *that* address (the
Host header and TLS SNI/certificate check keep the original name), so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot steer a delivery inside the network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import httpx

from imap2api.config import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """Raised when a webhook URL leads only to private, loopback, link-local or reserved addresses."""


class ResolutionFailed(Exception):
    """Raised when a webhook host does not resolve (a transient failure: retried)."""


@dataclass(frozen=True)
class Target:
    """A checked destination: the URL to connect to (host replaced by the IP) and the original name."""

    url: httpx.URL
    ip: str
    host_header: str
    sni_hostname: str | None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why deliveries may not go to ``ip`` (None when it is a public unicast address)."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return refusal_reason(inner)
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise ResolutionFailed(f"cannot resolve {host}: {exc}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # Strip an IPv6 zone ("fe80::1%eth0"): the zone does not change what the address is.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ResolutionFailed(f"cannot resolve {host}: no addresses")
    return addresses


def resolve_target(url: str, *, allow_private: bool | None = None) -> Target:
    """Resolve a webhook URL to the address to connect to.

    Takes the first resolved address that is allowed; raises AddressRefused when none is (unless
    ``allow_private``, default ``settings.webhook_allow_private``), ResolutionFailed when the name
    does not resolve, and ValueError for a URL that is not http(s) with a host.
    """
    allow = settings.webhook_allow_private if allow_private is None else allow_private
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("a webhook URL must be http(s) with a host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = parsed.raw_host.decode("ascii")
    if host.startswith("["):
        host = host[1:-1]
    addresses = _resolve(host, port)
    chosen = None
    for address in addresses:
        if allow or refusal_reason(address) is None:
            chosen = address
            break
    if chosen is None:
        # Say what an IP literal is, but never what a name resolves to: that would let a caller map
        # internal DNS names through webhook errors.
        literal = len(addresses) == 1 and str(addresses[0]) == host
        what = refusal_reason(addresses[0]) if literal else "not a public address"
        raise AddressRefused(
            f"{parsed.host} is {what}; deliveries there are refused (IMAP2API_WEBHOOK_ALLOW_PRIVATE)"
        )
    return Target(
        url=parsed.copy_with(host=str(chosen)),
        ip=str(chosen),
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=host if parsed.scheme == "https" else None,
    )
