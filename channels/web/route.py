"""The web chat's routes: visitor sessions, the socket, the widget and the demo page; and
mounting the channel."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, web
from redis.exceptions import RedisError

from channels import constants as K
from channels.base import ChannelHost
from channels.errors import Unavailable
from channels.http import json_error
from channels.log_ids import bind
from channels.schema import ChannelName
from channels.web import tokens as web_tokens
from channels.web.adapter import WebAdapter
from channels.web.auth import visitor_of_first_frame
from channels.web.config import WebConfig
from channels.web.connection import VisitorConnection
from channels.web.render import conversation_key
from channels.web.socket import VisitorSocket, WebSocketDisconnect

log = logging.getLogger(__name__)


STATIC = Path(__file__).resolve().parent / "static"
HEARTBEAT_S = 25.0  # ping interval; a peer that does not answer is dropped
CORS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}


def setup(app: web.Application, host: ChannelHost, config: WebConfig) -> None:
    """Register the web adapter and mount the web routes. Without a secret
    (``OMNIGATE_WEB_SECRET``) the widget and demo page are still served, but sessions and
    sockets answer 503."""
    host.adapters[ChannelName.web] = WebAdapter(host.redis, host.live, log_ttl_s=config.log_ttl_s)
    app[WEB] = WebChannel(host, config)
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

    host: ChannelHost
    config: WebConfig
    sockets: weakref.WeakSet[VisitorSocket] = field(default_factory=weakref.WeakSet)

    def require_secret(self) -> str:
        if self.config.secret is None:
            missing = (
                "web chat is not configured: OMNIGATE_WEB_SECRET is missing, and has no default"
            )
            raise Unavailable(missing, public=missing)
        return self.config.secret


WEB = web.AppKey("web", WebChannel)


# --- routes --------------------------------------------------------------------------------


async def session(request: web.Request) -> web.Response:
    """A visitor token: ``{"token": old}`` continues that session while ``old`` is valid;
    an empty body, or an expired or foreign token, starts a new one."""
    channel = request.app[WEB]
    secret = channel.require_secret()
    cors = _cors_for(request, channel.config)
    if cors is None:
        return _foreign_origin(request)
    body = await request.read()
    old: object = None
    if body.strip():
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return cors(json_error(400, "body is not valid JSON"))
        if not isinstance(data, dict):
            return cors(json_error(400, "body must be a JSON object"))
        old = data.get("token")
        if old is not None and not isinstance(old, str):
            return cors(json_error(400, "'token' must be a string"))
    session_id = None
    if isinstance(old, str) and old:
        with contextlib.suppress(web_tokens.BadToken):
            session_id = web_tokens.verify(secret, old).session_id
    s = channel.config
    r = channel.host.redis
    try:
        # Renewal only while the session is younger than its maximum age (the key's TTL).
        if session_id is not None and not await r.exists(K.WEB_SESSION + session_id):
            session_id = None
        if session_id is None:
            if await _too_many_new_sessions(r, request.remote or "unknown", s.new_sessions_per_min):
                return cors(json_error(429, "too many new chat sessions; try again in a minute"))
            session_id = web_tokens.new_session_id()
            await r.set(K.WEB_SESSION + session_id, int(time.time()), ex=s.session_max_age_s)
            lifetime = s.token_ttl_s
        else:
            left = await r.ttl(K.WEB_SESSION + session_id)
            lifetime = max(min(s.token_ttl_s, int(left)), 60)
    except (RedisError, OSError) as exc:
        raise Unavailable(f"web session store: {exc}") from exc
    token = web_tokens.issue(secret, session_id, lifetime)
    return cors(web.json_response({"session_id": session_id, "token": token}))


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for ``POST /web/session`` from a shop's own pages."""
    cors = _cors_for(request, request.app[WEB].config)
    if cors is None:
        return _foreign_origin(request)
    return cors(web.Response(status=204))


async def websocket(request: web.Request) -> web.StreamResponse:
    """The visitor's socket: the token comes in the first frame (``channels.web.auth``), or,
    in DESIGN.md's older form, in the URL, where it is checked before the upgrade."""
    channel = request.app[WEB]
    secret = channel.require_secret()
    if _cors_for(request, channel.config) is None:
        return _foreign_origin(request)
    visitor: web_tokens.Visitor | None = None
    if "token" in request.query:
        try:
            visitor = web_tokens.verify(secret, request.query.get("token"))
        except web_tokens.BadToken as exc:
            return json_error(401, str(exc))
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=channel.config.max_body_bytes)
    if not ws.can_prepare(request).ok:
        return json_error(400, "GET /web/ws expects a websocket upgrade")
    sock = VisitorSocket(ws)
    await sock.accept(request)
    channel.sockets.add(sock)
    try:
        if visitor is None:
            try:
                visitor = await visitor_of_first_frame(sock, secret)
            except WebSocketDisconnect:
                visitor = None
            if visitor is None:
                return ws
        conv = conversation_key(visitor.session_id)
        bind(conversation=conv)
        async with channel.host.live.listen(conv) as events:
            connection = VisitorConnection(
                channel.host, channel.config, sock, visitor, events, request.remote
            )
            await connection.run()
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


def _cors_for(
    request: web.Request, config: WebConfig
) -> Callable[[web.Response], web.Response] | None:
    """What to add to a response for this request's page (CORS headers); None when the page
    may not chat: an origin neither in ``OMNIGATE_WEB_ORIGINS`` nor the gateway's own. A
    request without an Origin header (not from a browser page) is let through: the origin
    check stops other sites' pages, the per-address limits stop scripts."""
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}"
    if config.origins is not None and origin is not None and origin not in config.origins:
        if origin != own:
            return None
    allow = "*" if config.origins is None else (origin or own)

    def add(resp: web.Response) -> web.Response:
        resp.headers.update(CORS)
        resp.headers["Access-Control-Allow-Origin"] = allow
        if config.origins is not None:
            resp.headers["Vary"] = "Origin"
        return resp

    return add


def _foreign_origin(request: web.Request) -> web.Response:
    origin = request.headers.get("Origin")
    return json_error(
        403,
        f"pages on {origin} may not start chat sessions: add the origin to OMNIGATE_WEB_ORIGINS",
    )


async def _close_sockets(app: web.Application) -> None:
    """On shutdown: tell every open widget to reconnect (to another replica, or to us later)."""
    for sock in list(app[WEB].sockets):
        await sock.close(WSCloseCode.GOING_AWAY, "gateway restarting")
