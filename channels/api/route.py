"""``POST /api/chat``: one turn over plain HTTP (also what ``omnigate chat`` talks to), and
mounting the channel."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import Histogram
from pydantic import ValidationError

from channels.api.adapter import ApiAdapter
from channels.api.config import ApiConfig
from channels.api.parse import parse
from channels.base import ChannelHost
from channels.http import json_error, read_json
from channels.schema import ChannelName

TURN_SECONDS = Histogram("omnigate_api_turn_seconds", "POST /api/chat round trip")


@dataclass(frozen=True)
class ApiChannel:
    """The API channel's state in one gateway process."""

    host: ChannelHost
    config: ApiConfig


API = web.AppKey("api", ApiChannel)


def setup(app: web.Application, host: ChannelHost, config: ApiConfig) -> None:
    """Register the API adapter and mount ``POST /api/chat``."""
    host.adapters[ChannelName.api] = ApiAdapter(host.live)
    app[API] = ApiChannel(host, config)
    app.router.add_post("/api/chat", chat)


def _bad(message: str, status: int = 400) -> web.Response:
    return json_error(status, message)


async def chat(request: web.Request) -> web.Response:
    """One turn over plain HTTP: ``{"user", "text", "payload"?, "id"?}`` →
    ``{"replies": [Reply]}`` once the worker has answered."""
    channel = request.app[API]
    config, host = channel.config, channel.host
    token = config.api_token
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
    if len(text) > config.max_text_chars:
        return _bad(f"'text' is longer than {config.max_text_chars} characters", 413)
    try:
        inbound = parse(user, text, payload, mid)
    except ValidationError as exc:
        return _bad(f"invalid message: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    # Where the request came from: the email gate limits guessing per client too.
    inbound = inbound.model_copy(update={"meta": {**inbound.meta, "client": _client(request)}})

    started = time.monotonic()
    async with host.live.listen(inbound.conversation_key) as events:
        if not await host.ingress.submit(inbound, address=request.remote):
            return _bad(f"message id {mid!r} was already received", 409)
        try:
            replies = await asyncio.wait_for(
                _collect(events, inbound.id), timeout=config.chat_timeout_s
            )
        except TimeoutError:
            return _bad(
                f"the turn took longer than {config.chat_timeout_s:g}s; it is still "
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


def _client(request: web.Request) -> str:
    """The client's address (the proxy's, behind one: each proxy is one client)."""
    return request.remote or "unknown"
