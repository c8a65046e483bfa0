"""What the web chat and the staff console both need to know of an HTTP request behind the
reverse proxy of ``deploy/``: the client's address and whether it came over HTTPS.

Only a peer that is a proxy we may believe (loopback or a private network address) is trusted
with X-Forwarded-For / X-Forwarded-Proto; a public peer's headers are ignored.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web


def from_proxy(request: web.Request) -> bool:
    """The peer is a reverse proxy we may believe: loopback or a private network address."""
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return peer.is_loopback or peer.is_private


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
