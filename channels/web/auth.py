"""Who a web socket belongs to: the visitor token, sent as the socket's first frame
``{"type": "auth", "token": "…"}`` so it never sits in a URL (proxies and access logs keep
URLs). ``GET /web/ws?token=…`` (DESIGN.md's form) is still accepted for clients built
against it; the widget no longer uses it."""

from __future__ import annotations

import asyncio
import json
from typing import Protocol

from channels.web import tokens as web_tokens

AUTH_WAIT_S = 10.0  # a socket that says nothing for this long is closed
CLOSE_UNAUTHORISED = 4003


class FrameSocket(Protocol):
    """The part of ``channels.web.socket.VisitorSocket`` this needs."""

    async def receive(self) -> str | bytes: ...

    async def send(self, frame: dict[str, object]) -> None: ...

    async def close(self, code: int = ..., reason: str = ...) -> None: ...


async def visitor_of_first_frame(sock: FrameSocket, secret: str) -> web_tokens.Visitor | None:
    """The visitor named by the socket's first frame; None (the socket told why and closed)
    when it is not a valid ``auth`` frame in time."""
    try:
        raw = await asyncio.wait_for(sock.receive(), AUTH_WAIT_S)
    except TimeoutError:
        await _refuse(sock, 'no auth frame: send {"type": "auth", "token": …} first')
        return None
    try:
        frame = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != "auth":
        await _refuse(sock, 'the first frame must be {"type": "auth", "token": …}')
        return None
    token = frame.get("token")
    try:
        return web_tokens.verify(secret, token if isinstance(token, str) else None)
    except web_tokens.BadToken as exc:
        await _refuse(sock, str(exc))
        return None


async def _refuse(sock: FrameSocket, why: str) -> None:
    await sock.send({"type": "error", "error": why})
    await sock.close(CLOSE_UNAUTHORISED, why[:120])
