"""A fake Slack Web API server, and the ``fake_slack`` session fixture (a pytest plugin,
registered by ``tests/conftest.py``).

It answers the methods omnigate calls through slack-sdk (``auth.test``, ``chat.postMessage``,
``chat.update``, ``users.info``, ``apps.connections.open``) at ``/api/<method>``, records every
call, and can answer the next N calls of a method with 429 and a ``Retry-After``. ``/socket``
is a Socket Mode websocket: it says hello, sends the envelopes queued with ``push_envelope``
and records the client's acks. Builders at the bottom make the Events API and interactivity
requests Slack would send, signed with the signing secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.support.servers import BackgroundServer

TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"  # Socket Mode's app-level token
SIGNING_SECRET = "fake-slack-signing-secret-0123456789"
AGENT_CHANNEL = "C0AGENTS"
TEAM = "T0SHOP"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
GONE_CHANNEL = "C0GONE"  # answers channel_not_found


@dataclass
class Call:
    """One request the fake received."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)
    answered: str = "ok"  # "ok", "429" or "error"
    ts: str | None = None  # the ts the fake gave a posted message

    @property
    def channel(self) -> str | None:
        c = self.params.get("channel")
        return str(c) if c is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.params.get("blocks") or [])

    @property
    def thread_ts(self) -> str | None:
        t = self.params.get("thread_ts")
        return str(t) if t else None

    @property
    def block_texts(self) -> str:
        """Every section's text, joined: what a person reads in the message."""
        return "\n".join(
            b["text"]["text"] for b in self.blocks if b.get("type") == "section" and "text" in b
        )


class FakeSlack:
    """The fake's state; ``BackgroundServer`` serves it from its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self._fail: dict[str, int] = {}
        self._retry_after = 1
        self._ts = itertools.count(1)
        self.names: dict[str, str] = {}  # user id -> display name for users.info
        self._envelopes: list[dict[str, Any]] = []  # to send on the Socket Mode socket
        self.socket_acks: list[dict[str, Any]] = []  # what Socket Mode clients sent back
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/socket", self._socket)
        self.server = BackgroundServer(app)
        self.url = self.server.url
        self.env = {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.url + "/api/",
            "OMNIGATE_AGENT_CHANNEL": AGENT_CHANNEL,
            "OMNIGATE_AGENT_TIMEOUT": "3600",
        }

    # --- test controls -------------------------------------------------------------------

    def fail_next(self, n: int, method: str = "chat.postMessage", retry_after: int = 1) -> None:
        """Answer the next ``n`` calls of ``method`` with 429 Too Many Requests."""
        with self._lock:
            self._fail[method] = n
            self._retry_after = retry_after

    def posts(self, channel: str, ok_only: bool = True, thread_ts: str | None = None) -> list[Call]:
        """The ``chat.postMessage`` calls to ``channel`` (in one thread, when given)."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == "chat.postMessage"
                and c.channel == channel
                and (not ok_only or c.answered == "ok")
                and (thread_ts is None or c.thread_ts == thread_ts)
            ]

    def shown(self, channel: str) -> list[str]:
        """What ``channel`` shows now: each posted message's section texts, after its
        ``chat.update`` calls, oldest first."""
        messages: dict[str, str] = {}
        with self._lock:
            for c in self.calls:
                if c.answered != "ok" or c.channel != channel:
                    continue
                if c.method == "chat.postMessage" and c.ts is not None:
                    messages[c.ts] = c.block_texts or c.text
                elif c.method == "chat.update" and str(c.params.get("ts")) in messages:
                    messages[str(c.params.get("ts"))] = c.block_texts or c.text
        return [messages[ts] for ts in sorted(messages, key=float)]

    def push_envelope(self, envelope: dict[str, Any]) -> None:
        """Send ``envelope`` to the Socket Mode client (now, or once one connects)."""
        with self._lock:
            self._envelopes.append(envelope)

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        channel: str,
        count: int = 1,
        timeout: float = 15,
        thread_ts: str | None = None,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Wait until ``count`` messages (matching ``where``) were posted to ``channel``."""
        deadline = time.monotonic() + timeout
        while True:
            got = [c for c in self.posts(channel, thread_ts=thread_ts) if where is None or where(c)]
            if len(got) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert len(got) >= count, (
            f"{len(got)}/{count} posts to {channel} after {timeout}s: "
            f"{[(c.answered, c.thread_ts, c.text) for c in self.posts(channel, False)]}"
        )
        return got

    # --- the Web API ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        call = Call(method, params, token)
        with self._lock:
            self.calls.append(call)
            if self._fail.get(method, 0) > 0:
                self._fail[method] -= 1
                call.answered = "429"
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(self._retry_after)},
                )
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return _error("invalid_auth")
            return web.json_response(
                {"ok": True, "url": self.url.replace("http", "ws", 1) + "/socket"}
            )
        if token != TOKEN:
            call.answered = "error"
            return _error("invalid_auth")
        handler = _METHODS.get(method)
        if handler is None:
            call.answered = "error"
            return _error("unknown_method")
        if call.channel == GONE_CHANNEL:
            call.answered = "error"
            return _error("channel_not_found")
        result = handler(self, call)
        return web.json_response({"ok": True, **result})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake"},
                "connection_info": {"app_id": "A0"},
            }
        )

        async def read() -> None:
            async for msg in ws:
                with self._lock:
                    self.socket_acks.append(json.loads(msg.data))

        reader = asyncio.create_task(read())
        try:
            while not ws.closed and not reader.done():
                with self._lock:
                    out, self._envelopes = self._envelopes, []
                for envelope in out:
                    await ws.send_json(envelope)
                await asyncio.sleep(0.05)
        finally:
            reader.cancel()
        return ws

    def next_ts(self) -> str:
        with self._lock:
            return f"{int(time.time())}.{next(self._ts):06d}"

    def stop(self) -> None:
        self.server.stop()


def _post_message(fake: FakeSlack, call: Call) -> dict[str, Any]:
    ts = fake.next_ts()
    call.ts = ts
    message = {
        "type": "message",
        "text": call.text,
        "user": BOT_USER,
        "bot_id": BOT_ID,
        "ts": ts,
        "blocks": call.blocks,
    }
    if call.thread_ts:
        message["thread_ts"] = call.thread_ts
    return {"channel": call.channel, "ts": ts, "message": message}


def _users_info(fake: FakeSlack, call: Call) -> dict[str, Any]:
    uid = str(call.params.get("user"))
    name = fake.names.get(uid, f"Agent {uid}")
    return {
        "user": {
            "id": uid,
            "name": name.lower().replace(" ", "."),
            "real_name": name,
            "profile": {"display_name": name, "real_name": name},
        }
    }


_METHODS: dict[str, Callable[[FakeSlack, Call], dict[str, Any]]] = {
    "auth.test": lambda fake, c: {
        "url": "https://shop.slack.example/",
        "team": "Shop",
        "user": "omnigate",
        "team_id": TEAM,
        "user_id": BOT_USER,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    },
    "chat.postMessage": _post_message,
    "chat.update": lambda fake, c: {"channel": c.channel, "ts": c.params.get("ts"), "text": c.text},
    "users.info": _users_info,
    # Each person's DM channel with the app: "D" + their user id.
    "conversations.open": lambda fake, c: {"channel": {"id": f"D{c.params.get('users')}"}},
}


async def _params(request: web.Request) -> dict[str, Any]:
    """JSON or form parameters (slack-sdk sends both); JSON-encoded form values decoded."""
    if request.content_type == "application/json":
        raw = await request.json() if request.can_read_body else {}
        return dict(raw)
    form = await request.post()
    params: dict[str, Any] = {**request.query}
    params.update({k: v for k, v in form.items() if isinstance(v, str)})
    if isinstance(params.get("blocks"), str):
        params["blocks"] = json.loads(params["blocks"])
    return params


def _error(error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error})


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    """The fake Web API; its ``.env`` points the gateway's Slack adapter at it."""
    fake = FakeSlack()
    yield fake
    fake.stop()


# --- request builders --------------------------------------------------------------------------

_ids = itertools.count(random.randrange(10**6, 10**8))


def next_id(prefix: str = "") -> str:
    """A fresh id for this test session (``D…`` a DM, ``C…`` a channel, ``U…`` a user)."""
    return f"{prefix}{next(_ids)}"


def ts() -> str:
    """A fresh message ts."""
    return f"{int(time.time())}.{next(_ids) % 10**6:06d}"


def sign(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's v0 request signature headers for ``body``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def event_callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An Events API envelope around ``event``."""
    return {
        "token": "verification-token",
        "team_id": TEAM,
        "api_app_id": "A0APP",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or next_id("Ev"),
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }


def dm_event(channel: str, user: str, text: str, **extra: Any) -> dict[str, Any]:
    """A customer's direct message to the app."""
    return {
        "type": "message",
        "channel": channel,
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts(),
        "team": TEAM,
        **extra,
    }


def mention_event(channel: str, user: str, text: str, **extra: Any) -> dict[str, Any]:
    """An ``app_mention`` in a channel."""
    return {
        "type": "app_mention",
        "channel": channel,
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts(),
        "team": TEAM,
        **extra,
    }


def thread_reply(
    channel: str, thread_ts: str, user: str, text: str, **extra: Any
) -> dict[str, Any]:
    """A person's reply in a thread of a channel (an agent in the agents' channel)."""
    return {
        "type": "message",
        "channel": channel,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": ts(),
        "thread_ts": thread_ts,
        "team": TEAM,
        **extra,
    }


def block_actions(
    channel: str,
    user: str,
    value: str,
    action_id: str = "og_btn_0",
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A click on a Block Kit button under ``message`` (a posted message's JSON)."""
    message = message or {"type": "message", "ts": ts(), "text": "Pick one", "blocks": []}
    container = {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if message.get("thread_ts"):
        container["thread_ts"] = message["thread_ts"]
    return {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "shop"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0APP",
        "token": "verification-token",
        "container": container,
        "trigger_id": next_id("trigger-"),
        "channel": {"id": channel, "name": "x"},
        "message": message,
        "response_url": "https://hooks.slack.example/actions/1",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "text": {"type": "plain_text", "text": "Button"},
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def form_body(payload: dict[str, Any]) -> bytes:
    """An interactivity request body: ``payload=<json>``, form-encoded, as Slack sends it."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def slash_command(channel: str, user: str, text: str, command: str = "/omnigate") -> bytes:
    """A slash command request body (form-encoded)."""
    return urllib.parse.urlencode(
        {
            "token": "verification-token",
            "team_id": TEAM,
            "team_domain": "shop",
            "channel_id": channel,
            "channel_name": "agents",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": "https://hooks.slack.example/commands/1",
            "trigger_id": next_id("trigger-"),
        }
    ).encode()
