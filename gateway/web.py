"""The web chat channel in the gateway: ``POST /web/session``, ``GET /web/ws``, the widget
(``GET /web/widget.js``) and the demo shop page (``GET /``).

A visitor gets a signed token (``gateway.web_tokens``), then opens a websocket with it. Each
socket is a ``VisitorConnection``: it reads client frames (messages go to ingress, like every
channel's) and forwards the conversation's live frames (published by ``channels.web.WebAdapter``
on whichever replica delivered them). ``resume`` replays the conversation's Redis log, so a
reload, a dropped connection or a gateway restart loses nothing, on any number of replicas and
without sticky sessions.

Replay against live: the connection subscribes before it reads the log, sends the log, and then
drops live reply frames whose seq it has already sent. Both paths send under one lock, so the
visitor sees each seq once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels import constants as K
from channels import web as web_channel
from channels.schema import ChannelName
from gateway import web_tokens
from gateway.context import GATEWAY, Gateway, json_error
from gateway.errors import Unavailable
from gateway.logs import bind
from gateway.settings import ConfigError

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
HEARTBEAT_S = 25.0  # ping interval; a peer that does not answer is dropped
BURST = 10  # messages a visitor may send at once ...
REFILL_PER_S = 1.0  # ... and per second after that
CLOSE_TOKEN_EXPIRED = 4001
HOLD_S = 2.0  # how long a live reply waits for an earlier one that has not come yet
MAX_SKIPPED = 1000
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}


def setup(app: web.Application) -> None:
    """Register the web adapter and mount the web routes. Without ``OMNIGATE_WEB_SECRET`` the
    widget and demo page are still served, but sessions and sockets answer 503."""
    gw = app[GATEWAY]
    s = gw.settings
    gw.adapters[ChannelName.web] = web_channel.WebAdapter(
        gw.redis, gw.live, log_ttl_s=max(s.session_ttl_s, s.web_token_ttl_s)
    )
    try:
        secret: str | None = s.effective_web_secret
    except ConfigError as exc:
        log.warning("web chat is off: %s", exc)
        secret = None
    app[WEB] = WebChannel(gw, secret)
    app.router.add_post("/web/session", session)
    app.router.add_route("OPTIONS", "/web/session", preflight)
    app.router.add_get("/web/ws", websocket)
    app.router.add_get("/web/widget.js", widget_js)
    app.router.add_get("/", demo_page)
    # The demo shop's product pictures (its image_url values point here).
    app.router.add_static("/static/img/", STATIC / "img", append_version=False)
    app.on_shutdown.append(_close_sockets)


@dataclass
class WebChannel:
    """The web channel's state in one gateway process."""

    gw: Gateway
    secret: str | None
    sockets: weakref.WeakSet[VisitorSocket] = field(default_factory=weakref.WeakSet)

    def require_secret(self) -> str:
        if self.secret is None:
            missing = (
                "web chat is not configured: OMNIGATE_WEB_SECRET is missing, and has no default"
            )
            raise Unavailable(missing, public=missing)
        return self.secret


WEB = web.AppKey("web", WebChannel)


# --- the socket ----------------------------------------------------------------------------


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


class Delivered:
    """The reply seqs a socket's visitor has: every one up to ``floor`` except those in
    ``skipped``, and those in ``above``. ``floor`` starts at the newest logged seq when the
    socket opens (a visitor who never resumes gets what comes next) and ``resume`` resets it.
    A set rather than a high-water mark: with several replicas delivering one conversation,
    seq 6 may be published before 5, and 5 must still go out when it comes."""

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.above: set[int] = set()
        self.skipped: set[int] = set()  # given up waiting for these; still sent if they come

    def __call__(self, seq: int) -> bool:
        return (seq <= self.floor and seq not in self.skipped) or seq in self.above

    @property
    def next(self) -> int:
        return self.floor + 1

    def add(self, seq: int) -> None:
        if seq <= self.floor:
            self.skipped.discard(seq)
        else:
            self.above.add(seq)
        self._compact()

    def skip_to(self, seq: int) -> None:
        """Stop waiting for the seqs below ``seq``."""
        self.skipped |= {s for s in range(max(self.next, seq - MAX_SKIPPED), seq)} - self.above
        self.floor = max(self.floor, seq - 1)
        self.above = {s for s in self.above if s > self.floor}
        if len(self.skipped) > MAX_SKIPPED:
            self.skipped = set(sorted(self.skipped)[-MAX_SKIPPED:])
        self._compact()

    def resumed(self, after: int, replayed: list[int]) -> None:
        """The visitor has everything up to ``after``, and was just sent ``replayed``."""
        # Below the oldest logged frame there is nothing left to send: the log is trimmed.
        self.floor = max(after, min(replayed, default=after + 1) - 1)
        self.above = {s for s in [*self.above, *replayed] if s > self.floor}
        self.skipped = set()
        self._compact()

    def _compact(self) -> None:
        while self.next in self.above:
            self.floor += 1
            self.above.discard(self.floor)


class VisitorConnection:
    """One open widget: client frames in, the conversation's frames out."""

    def __init__(
        self,
        gw: Gateway,
        sock: VisitorSocket,
        visitor: web_tokens.Visitor,
        events: asyncio.Queue[dict[str, Any]],
    ) -> None:
        self.gw = gw
        self.sock = sock
        self.visitor = visitor
        self.events = events
        self.has = Delivered(0)  # set from the log when the connection starts
        self.held: dict[int, dict[str, Any]] = {}  # live replies waiting for an earlier one
        self._hold_until: float | None = None
        self._out = asyncio.Lock()  # replay and live frames never interleave
        self._tokens = float(BURST)
        self._refilled = time.monotonic()

    async def run(self) -> None:
        """Until the visitor leaves, the socket breaks or the token expires."""
        with contextlib.suppress(RedisError, OSError):
            self.has = Delivered(
                await web_channel.newest_seq(self.gw.redis, self.visitor.session_id)
            )
        tasks = {
            asyncio.create_task(self._read_loop(), name="web-read"),
            asyncio.create_task(self._live_loop(), name="web-live"),
        }
        lifetime = max(self.visitor.expires_at - time.time(), 0.0)
        done, pending = await asyncio.wait(
            tasks, timeout=lifetime, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if not done:
            await self.sock.close(CLOSE_TOKEN_EXPIRED, "token expired")
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect):
                log.error("web socket of %s failed", self.visitor.session_id, exc_info=exc)
                await self.sock.close(WSCloseCode.INTERNAL_ERROR, "internal error")

    async def _read_loop(self) -> None:
        while True:
            raw = await self.sock.receive()
            if isinstance(raw, bytes):
                await self._error("frames must be JSON text, not binary")
                continue
            try:
                frame = web_channel.parse_frame(raw, self.gw.settings.max_text_chars)
            except web_channel.BadFrame as exc:
                await self._error(str(exc))
                continue
            if isinstance(frame, web_channel.ResumeFrame):
                await self._resume(frame.after)
            else:
                await self._message(frame)

    async def _message(self, frame: web_channel.MessageFrame) -> None:
        if not self._take_token():
            await self._error("too many messages; wait a moment and send again")
            return
        try:
            inbound = web_channel.to_inbound(self.visitor.session_id, frame)
            inbound = inbound.model_copy(
                update={"meta": {**inbound.meta, "client": self.sock.remote}}
            )
            await self.gw.ingress.submit(inbound)  # False: a re-sent frame, already queued
        except ValidationError as exc:
            err = exc.errors()[0]
            await self._error(f"invalid message: {err['loc']}: {err['msg']}")
        except Unavailable as exc:
            log.warning("a web message was not queued: %s", exc.detail)
            await self._error(str(exc))

    async def _resume(self, after: int) -> None:
        async with self._out:
            try:
                frames = await web_channel.read_log(self.gw.redis, self.visitor.session_id, after)
            except (RedisError, OSError):
                await self._send(
                    web_channel.error_frame(
                        "the conversation could not be read; resume again shortly"
                    )
                )
                return
            for frame in frames:
                await self._send(frame)
            self.has.resumed(after, [int(f["seq"]) for f in frames])
            await self._release()

    async def _live_loop(self) -> None:
        while True:
            wait = None if self._hold_until is None else self._hold_until - time.monotonic()
            try:
                event = await asyncio.wait_for(self.events.get(), wait)
            except TimeoutError:
                async with self._out:
                    await self._release(force=True)  # the missing reply is late: go on
                continue
            kind = event.get("type")
            async with self._out:
                if kind == "typing":
                    await self._send(web_channel.TYPING)
                elif kind == "reply":
                    await self._offer(event)

    async def _offer(self, frame: dict[str, Any]) -> None:
        """A live reply: sent now if it is the next one, else held until the ones before it
        come (live, or from the log when their publish was lost) or ``HOLD_S`` passes."""
        seq = int(frame["seq"])
        if self.has(seq):
            return  # already replayed
        self.held[seq] = frame
        first = min(self.held)
        if first > self.has.next:
            with contextlib.suppress(RedisError, OSError):
                for logged in await web_channel.read_log(
                    self.gw.redis, self.visitor.session_id, self.has.floor
                ):
                    s = int(logged["seq"])
                    if s < first and not self.has(s):
                        self.held.setdefault(s, logged)
        await self._release()

    async def _release(self, force: bool = False) -> None:
        """Send the held replies that are next in line (all of them, in order, if ``force``)."""
        while self.held:
            seq = min(self.held)
            if self.has(seq):
                del self.held[seq]
                continue
            if seq > self.has.next:
                if not force:
                    break
                self.has.skip_to(seq)
            await self._send(self.held.pop(seq))
            self.has.add(seq)
        if not self.held:
            self._hold_until = None
        elif self._hold_until is None:
            self._hold_until = time.monotonic() + HOLD_S

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.sock.send(frame)

    async def _error(self, message: str) -> None:
        async with self._out:
            await self._send(web_channel.error_frame(message))

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(BURST, self._tokens + (now - self._refilled) * REFILL_PER_S)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


# --- routes --------------------------------------------------------------------------------


async def session(request: web.Request) -> web.Response:
    """A visitor token: ``{"token": old}`` continues that session while ``old`` is valid;
    an empty body, or an expired or foreign token, starts a new one."""
    channel = request.app[WEB]
    secret = channel.require_secret()
    body = await request.read()
    old: object = None
    if body.strip():
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _cors(json_error(400, "body is not valid JSON"))
        if not isinstance(data, dict):
            return _cors(json_error(400, "body must be a JSON object"))
        old = data.get("token")
        if old is not None and not isinstance(old, str):
            return _cors(json_error(400, "'token' must be a string"))
    session_id = None
    if isinstance(old, str) and old:
        with contextlib.suppress(web_tokens.BadToken):
            session_id = web_tokens.verify(secret, old).session_id
    s = channel.gw.settings
    r = channel.gw.redis
    try:
        # Renewal only while the session is younger than its maximum age (the key's TTL).
        if session_id is not None and not await r.exists(K.WEB_SESSION + session_id):
            session_id = None
        if session_id is None:
            if await _too_many_new_sessions(
                r, request.remote or "unknown", s.web_new_sessions_per_min
            ):
                return _cors(json_error(429, "too many new chat sessions; try again in a minute"))
            session_id = web_tokens.new_session_id()
            await r.set(K.WEB_SESSION + session_id, int(time.time()), ex=s.web_session_max_age_s)
            lifetime = s.web_token_ttl_s
        else:
            left = await r.ttl(K.WEB_SESSION + session_id)
            lifetime = max(min(s.web_token_ttl_s, int(left)), 60)
    except (RedisError, OSError) as exc:
        raise Unavailable(f"web session store: {exc}") from exc
    token = web_tokens.issue(secret, session_id, lifetime)
    return _cors(web.json_response({"session_id": session_id, "token": token}))


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for ``POST /web/session`` from a shop's own pages."""
    return web.Response(status=204, headers=CORS)


async def websocket(request: web.Request) -> web.StreamResponse:
    """The visitor's socket; the token is checked before the upgrade."""
    channel = request.app[WEB]
    secret = channel.require_secret()
    try:
        visitor = web_tokens.verify(secret, request.query.get("token"))
    except web_tokens.BadToken as exc:
        return json_error(401, str(exc))
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT_S, max_msg_size=channel.gw.settings.max_body_bytes
    )
    if not ws.can_prepare(request).ok:
        return json_error(400, "GET /web/ws expects a websocket upgrade")
    sock = VisitorSocket(ws)
    await sock.accept(request)
    channel.sockets.add(sock)
    try:
        conv = web_channel.conversation_key(visitor.session_id)
        bind(conversation=conv)
        async with channel.gw.live.listen(conv) as events:
            await VisitorConnection(channel.gw, sock, visitor, events).run()
    finally:
        channel.sockets.discard(sock)
        await sock.close()
    return ws


async def widget_js(request: web.Request) -> web.FileResponse:
    """The embeddable widget."""
    return web.FileResponse(
        STATIC / "widget.js",
        headers={
            "Content-Type": "text/javascript; charset=utf-8",
            "Cache-Control": "public, max-age=300",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def demo_page(request: web.Request) -> web.FileResponse:
    """The demo shop page, with the widget on it."""
    return web.FileResponse(
        STATIC / "demo.html",
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _too_many_new_sessions(r: Any, client: str, limit: int) -> bool:
    """New visitor sessions per client address and minute (each is a fresh conversation, with
    a fresh count of email-gate attempts)."""
    key = f"{K.RATE}web-session:{client}"
    pipe = r.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, 60, nx=True)
    count, _ = await pipe.execute()
    return int(count) > limit


def _cors(resp: web.Response) -> web.Response:
    resp.headers.update(CORS)
    return resp


async def _close_sockets(app: web.Application) -> None:
    """On shutdown: tell every open widget to reconnect (to another replica, or to us later)."""
    for sock in list(app[WEB].sockets):
        await sock.close(WSCloseCode.GOING_AWAY, "gateway restarting")
