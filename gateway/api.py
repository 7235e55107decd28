"""``POST /api/chat`` and the operational routes: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, Histogram, generate_latest
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels import api as api_channel
from channels import constants as K
from gateway.context import GATEWAY, json_error, read_json

log = logging.getLogger(__name__)

TURN_SECONDS = Histogram("omnigate_api_turn_seconds", "POST /api/chat round trip")
WORKERS_ALIVE = Gauge(
    "omnigate_workers_alive", f"Worker processes with a heartbeat in the last {K.WORKER_ALIVE_S}s"
)


def setup(app: web.Application) -> None:
    """Mount the routes of this module."""
    app.router.add_post("/api/chat", chat)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def _bad(message: str, status: int = 400) -> web.Response:
    return json_error(status, message)


async def chat(request: web.Request) -> web.Response:
    """One turn over plain HTTP: ``{"user", "text", "payload"?, "id"?}`` →
    ``{"replies": [Reply]}`` once the worker has answered."""
    gw = request.app[GATEWAY]
    token = gw.settings.api_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _bad("missing or wrong bearer token", 401)
    body = await read_json(request)
    user, text, payload, mid = (body.get(k) for k in ("user", "text", "payload", "id"))
    if not isinstance(user, str) or not user.strip():
        return _bad("'user' is required: a non-empty string naming the customer")
    if not isinstance(text, str):
        return _bad("'text' is required: a string (may be empty when 'payload' is given)")
    if payload is not None and not isinstance(payload, str):
        return _bad("'payload' must be a string")
    if mid is not None and not isinstance(mid, str):
        return _bad("'id' must be a string")
    if not text.strip() and not payload:
        return _bad("'text' is empty and there is no 'payload'")
    if len(text) > gw.settings.max_text_chars:
        return _bad(f"'text' is longer than {gw.settings.max_text_chars} characters", 413)
    try:
        inbound = api_channel.parse(user, text, payload, mid)
    except ValidationError as exc:
        return _bad(f"invalid message: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    # Where the request came from: the email gate limits guessing per client too.
    inbound = inbound.model_copy(update={"meta": {**inbound.meta, "client": _client(request)}})

    started = time.monotonic()
    async with gw.live.listen(inbound.conversation_key) as events:
        if not await gw.ingress.submit(inbound, address=request.remote):
            return _bad(f"message id {mid!r} was already received", 409)
        try:
            replies = await asyncio.wait_for(
                _collect(events, inbound.id), timeout=gw.settings.chat_timeout_s
            )
        except TimeoutError:
            return _bad(
                f"the turn took longer than {gw.settings.chat_timeout_s:g}s; it is still "
                "queued and its reply will not come back on this request",
                504,
            )
    TURN_SECONDS.observe(time.monotonic() - started)
    return web.json_response({"replies": replies})


async def _collect(events: asyncio.Queue[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
    got: dict[int, dict[str, Any]] = {}
    while True:
        event = await events.get()
        if event.get("in_reply_to") != message_id:
            continue
        got[event["index"]] = event["reply"]
        if len(got) == event["count"]:
            return [got[i] for i in sorted(got)]


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers (always 200). The detail says how many workers sent a
    heartbeat lately (``null`` while Redis cannot tell)."""
    return web.json_response({"status": "ok", "workers": await _live_workers(request)})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: this gateway can accept work, i.e. Redis (inboxes, broker, reply stream)
    answers. Workers do not count: a message accepted while none runs waits in its inbox and
    is answered when one starts, so one busy or restarting GPU worker takes no gateway out."""
    try:
        await request.app[GATEWAY].redis.ping()
    except (RedisError, OSError):
        log.warning("readiness: Redis does not answer", exc_info=True)
        return web.json_response({"status": "unavailable", "redis": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "redis": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this gateway process."""
    await _live_workers(request)  # refreshes the gauge
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


async def _live_workers(request: web.Request) -> int | None:
    """Workers with a recent heartbeat (one ZCOUNT), also set as the ``omnigate_workers_alive``
    gauge; None when Redis does not answer."""
    try:
        alive = int(
            await request.app[GATEWAY].redis.zcount(
                K.WORKERS, time.time() - K.WORKER_ALIVE_S, "+inf"
            )
        )
    except (RedisError, OSError):
        return None
    WORKERS_ALIVE.set(alive)
    return alive


def _client(request: web.Request) -> str:
    """The client's address (the proxy's, behind one: each proxy is one client)."""
    return request.remote or "unknown"
