"""What the web chat and the staff console both need to know of an HTTP request behind the
reverse proxy of ``deploy/``: the client's address and whether it came over HTTPS.

Only a peer that is one of the proxies named in the settings (``CNR_TRUSTED_PROXIES``, default:
loopback only) is believed with X-Forwarded-For / X-Forwarded-Proto; anyone else's headers are
ignored. Each application says which proxies it trusts with :func:`trust_proxies`; one that
does not trusts loopback only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The proxies trusted when an application names none: this machine only.
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple[Network, ...])

__all__ = [
    "LOOPBACK",
    "TRUSTED_PROXIES",
    "client_address",
    "from_proxy",
    "is_https",
    "trust_proxies",
]


def trust_proxies(app: web.Application, networks: Iterable[Network]) -> None:
    """Believe the forwarding headers of peers in ``networks`` (the settings' trusted_proxies)."""
    app[TRUSTED_PROXIES] = tuple(networks)


def _peer(request: web.Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return None
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        return peer.ipv4_mapped  # an IPv4 peer on a dual-stack socket
    return peer


def from_proxy(request: web.Request) -> bool:
    """The peer is a reverse proxy we may believe: one of the application's trusted proxies."""
    peer = _peer(request)
    if peer is None:
        return False
    trusted = request.app.get(TRUSTED_PROXIES, LOOPBACK)
    return any(peer.version == net.version and peer in net for net in trusted)


def client_address(request: web.Request) -> str:
    """The client's address: the proxy's X-Forwarded-For (last hop) when from a proxy."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and from_proxy(request):
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass
    return request.remote or "?"


def is_https(request: web.Request) -> bool:
    """The client reached us over HTTPS (directly, or through a believed proxy)."""
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "")
    return proto.strip().lower() == "https" and from_proxy(request)
