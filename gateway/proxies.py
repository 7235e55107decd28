"""The client's address behind reverse proxies: the per-address limits (new web sessions,
messages a minute, email-gate guesses, agent sign-ins) count clients, not the proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(
    remote: str | None, forwarded_for: str | None, proxies: Sequence[Network]
) -> str | None:
    """The client's address: ``remote`` itself unless it is a trusted proxy; then the nearest
    address in X-Forwarded-For that is not a trusted proxy (the ones to its left were written
    by the client and prove nothing)."""
    if not proxies or remote is None or not _trusted(remote, proxies):
        return remote
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop if _is_address(hop) else remote
    return hops[0] if hops and _is_address(hops[0]) else remote


def middleware(proxies: Sequence[Network]) -> Middleware:
    """An aiohttp middleware that gives each request its client's address as ``remote``."""

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = client_address(request.remote, request.headers.get("X-Forwarded-For"), proxies)
        if client is not None and client != request.remote:
            request = request.clone(remote=client)
        return await handler(request)

    return forwarded


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
