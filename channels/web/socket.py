"""A visitor's websocket as JSON frames, with an explicit state (as starlette's
``websockets.py``): every way the connection can end surfaces as ``WebSocketDisconnect``."""

from __future__ import annotations

import contextlib
import json
from enum import Enum
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web


class WebSocketState(Enum):
    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2


class WebSocketDisconnect(Exception):
    """The visitor's socket is gone (or going); the loops that use it end."""

    def __init__(self, code: int = WSCloseCode.OK, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class VisitorSocket:
    """aiohttp's ``WebSocketResponse`` as JSON frames, with an explicit state; every way the
    connection can end surfaces as ``WebSocketDisconnect``."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.state = WebSocketState.CONNECTING
        self.remote = "unknown"

    async def accept(self, request: web.Request) -> None:
        self.remote = request.remote or "unknown"  # the email gate limits guessing per client
        await self.ws.prepare(request)
        self.state = WebSocketState.CONNECTED

    async def receive(self) -> str | bytes:
        """The next data frame: ``str`` for text, ``bytes`` for binary."""
        if self.state is not WebSocketState.CONNECTED:
            raise WebSocketDisconnect(self.ws.close_code or WSCloseCode.OK, "not connected")
        msg = await self.ws.receive()
        if msg.type is WSMsgType.TEXT:
            return str(msg.data)
        if msg.type is WSMsgType.BINARY:
            return bytes(msg.data)
        self.state = WebSocketState.DISCONNECTED
        reason = str(msg.data) if msg.type is WSMsgType.ERROR else msg.extra or ""
        raise WebSocketDisconnect(self.ws.close_code or WSCloseCode.ABNORMAL_CLOSURE, reason)

    async def send(self, frame: dict[str, Any]) -> None:
        if self.state is not WebSocketState.CONNECTED or self.ws.closed:
            self.state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(self.ws.close_code or WSCloseCode.OK, "not connected")
        try:
            await self.ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError) as exc:
            self.state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(WSCloseCode.ABNORMAL_CLOSURE, str(exc)) from exc

    async def close(self, code: int = WSCloseCode.OK, reason: str = "") -> None:
        if self.state is WebSocketState.CONNECTED:
            self.state = WebSocketState.DISCONNECTED
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, message=reason.encode()[:120])
