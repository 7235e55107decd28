"""A fake Telegram Bot API server, and the ``fake_telegram`` session fixture (a pytest plugin,
registered by ``tests/conftest.py``).

It answers the methods python-telegram-bot calls (``getMe``, ``sendMessage``, ``sendPhoto``,
``editMessageText`` (the chat's messages are kept, so ``shown`` tells what a chat shows now;
an edit to the same text is refused as Telegram does, "message is not modified"),
``sendChatAction``, ``answerCallbackQuery``, ``setWebhook``, ``deleteWebhook``, ``getUpdates``,
…) at ``/bot<token>/<method>``, records every call, can answer the next N calls of a method with
a 429 flood-control error, and serves updates queued with ``push_update`` to ``getUpdates``.
Builders at the bottom make the update JSON a test posts to ``/telegram/webhook``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.support.servers import BackgroundServer

TOKEN = "123:TEST"
SECRET = "fake-telegram-secret_0123456789"
BOT_USER = {
    "id": 123,
    "is_bot": True,
    "first_name": "Shop",
    "username": "shop_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class Call:
    """One request the fake received."""

    method: str
    params: dict[str, Any]
    token: str
    at: float = field(default_factory=time.monotonic)
    answered: str = "ok"  # "ok", "429", "error" or the status of a refusal window

    @property
    def chat_id(self) -> int | None:
        cid = self.params.get("chat_id")
        return int(cid) if cid is not None else None

    @property
    def keyboard(self) -> list[list[dict[str, Any]]]:
        """The inline keyboard rows of the call (empty when it has none)."""
        return list(self.params.get("reply_markup", {}).get("inline_keyboard", []))


class FakeTelegram:
    """The fake's state; ``BackgroundServer`` serves it from its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self._fail: dict[str, int] = {}
        self._retry_after = 1
        self._outage_until = 0.0  # monotonic time before which every send is refused
        self._outage_status = 429
        self._updates: dict[str, list[dict[str, Any]]] = {}
        self.blocked: set[int] = set()  # chats that answer 403 "bot was blocked by the user"
        self._message_ids = itertools.count(1)
        self.messages: dict[tuple[int, int], str] = {}  # (chat, message_id) → text now
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self.server = BackgroundServer(app)
        self.url = self.server.url
        self.env = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_URL": self.url,
            "TELEGRAM_MODE": "webhook",
        }

    # --- test controls -------------------------------------------------------------------

    def fail_next(self, n: int, method: str = "sendMessage", retry_after: int = 1) -> None:
        """Answer the next ``n`` calls of ``method`` with 429 Too Many Requests."""
        with self._lock:
            self._fail[method] = n
            self._retry_after = retry_after

    def refuse_for(self, seconds: float, status: int = 429) -> None:
        """Answer every sendMessage / sendPhoto of the next ``seconds`` with ``status``
        (429 flood control with retry_after 1, or a 5xx server error)."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds
            self._outage_status = status

    def push_update(self, update: dict[str, Any], token: str = TOKEN) -> None:
        """Queue an update for ``getUpdates`` (polling)."""
        with self._lock:
            self._updates.setdefault(token, []).append(update)

    def calls_for(
        self, chat_id: int, method: str | None = "sendMessage", ok_only: bool = True
    ) -> list[Call]:
        """The calls to one chat (of one method, or all with ``method=None``), in order."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.chat_id == chat_id
                and (method is None or c.method == method)
                and (not ok_only or c.answered == "ok")
            ]

    def shown(self, chat_id: int) -> list[str]:
        """The texts chat ``chat_id`` shows now (after edits), oldest first."""
        with self._lock:
            return [t for (c, _), t in sorted(self.messages.items()) if c == chat_id]

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    async def wait_for(
        self, chat_id: int, count: int = 1, method: str | None = "sendMessage", timeout: float = 15
    ) -> list[Call]:
        """Wait until ``count`` successful calls reached ``chat_id``; return them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.calls_for(chat_id, method)
            if len(got) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert len(got) >= count, (
            f"{len(got)}/{count} {method} calls to chat {chat_id} after {timeout}s: "
            f"{[(c.method, c.params.get('text')) for c in self.calls_for(chat_id, None, False)]}"
        )
        return got

    async def wait_until(self, check: Any, timeout: float = 15, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    # --- the Bot API ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await _params(request)
        call = Call(method, params, token)
        with self._lock:
            self.calls.append(call)
            if method in ("sendMessage", "sendPhoto") and time.monotonic() < self._outage_until:
                call.answered = str(self._outage_status)
                if self._outage_status != 429:
                    return _error(self._outage_status, "Internal Server Error")
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": 1},
                    },
                    status=429,
                )
            if self._fail.get(method, 0) > 0:
                self._fail[method] -= 1
                call.answered = "429"
                ra = self._retry_after
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {ra}",
                        "parameters": {"retry_after": ra},
                    },
                    status=429,
                )
        resp = await self._answer(token, method, params)
        if resp.status != 200:
            call.answered = "error"
        return resp

    async def _answer(self, token: str, method: str, params: dict[str, Any]) -> web.Response:
        if token != TOKEN:
            return _error(401, "Unauthorized")
        if method == "getUpdates":
            return _ok(await self._get_updates(token, params))
        if method == "editMessageText":
            return self._edit(params)
        handler = _RESULTS.get(method)
        if handler is None:
            return _error(404, f"Not Found: method {method} is not faked")
        chat = int(params["chat_id"]) if "chat_id" in params else None
        if chat is not None and chat < 0:
            return _error(400, "Bad Request: chat not found")
        if chat is not None and chat in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        return _ok(handler(self, params))

    async def _get_updates(self, token: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self._lock:
                queue = self._updates.setdefault(token, [])
                queue[:] = [u for u in queue if u["update_id"] >= offset]
                if queue or time.monotonic() >= deadline:
                    return list(queue)
            await asyncio.sleep(0.05)

    def _edit(self, params: dict[str, Any]) -> web.Response:
        key = (int(params["chat_id"]), int(params["message_id"]))
        with self._lock:
            if key not in self.messages:
                return _error(400, "Bad Request: message to edit not found")
            if self.messages[key] == params.get("text", "") and "reply_markup" not in params:
                return _error(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            self.messages[key] = params.get("text", "")
        message = {
            "message_id": key[1],
            "date": int(time.time()),
            "edit_date": int(time.time()),
            "chat": {"id": key[0], "type": "private"},
            "from": BOT_USER,
            "text": params.get("text", ""),
        }
        return _ok(message)

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        message_id = next(self._message_ids)
        with self._lock:
            self.messages[(int(params["chat_id"]), message_id)] = content.get(
                "text", content.get("caption", "")
            )
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": BOT_USER,
            **content,
        }

    def stop(self) -> None:
        self.server.stop()


def _send_message(fake: FakeTelegram, p: dict[str, Any]) -> dict[str, Any]:
    return fake._message(p, text=p.get("text", ""))


def _send_photo(fake: FakeTelegram, p: dict[str, Any]) -> dict[str, Any]:
    photo = [{"file_id": "AgAD-fake", "file_unique_id": "u1", "width": 320, "height": 320}]
    return fake._message(p, photo=photo, caption=p.get("caption", ""))


_RESULTS: dict[str, Any] = {
    "getMe": lambda fake, p: BOT_USER,
    "sendMessage": _send_message,
    "sendPhoto": _send_photo,
    "sendChatAction": lambda fake, p: True,
    "answerCallbackQuery": lambda fake, p: True,
    "setWebhook": lambda fake, p: True,
    "deleteWebhook": lambda fake, p: True,
    "getWebhookInfo": lambda fake, p: {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": 0,
    },
    "close": lambda fake, p: True,
    "logOut": lambda fake, p: True,
}


async def _params(request: web.Request) -> dict[str, Any]:
    """Form, multipart or JSON parameters; JSON-encoded values (reply_markup…) decoded."""
    if request.content_type == "application/json":
        raw = await request.json() if request.can_read_body else {}
        return dict(raw)
    form = await request.post()
    params: dict[str, Any] = {**request.query}
    for k, v in form.items():
        params[k] = v if isinstance(v, str) else "<file>"
    for k in ("reply_markup", "allowed_updates", "link_preview_options"):
        if isinstance(params.get(k), str):
            params[k] = json.loads(params[k])
    return params


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegram]:
    """The fake Bot API; its ``.env`` points the gateway's Telegram adapter at it."""
    fake = FakeTelegram()
    yield fake
    fake.stop()


# --- update builders ---------------------------------------------------------------------------

_ids = itertools.count(random.randrange(10**6, 10**8))


def next_id() -> int:
    """A fresh update / chat / message id for this test session."""
    return next(_ids)


def _from(chat_id: int) -> dict[str, Any]:
    return {
        "id": chat_id,
        "is_bot": False,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "language_code": "en",
    }


def message_update(
    chat_id: int, update_id: int | None = None, chat_type: str = "private", **content: Any
) -> dict[str, Any]:
    """An update with a new message (``text=…``, ``photo=[…]``, ``sticker={…}``…)."""
    chat = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = "Ada"
    return {
        "update_id": update_id or next_id(),
        "message": {
            "message_id": next_id(),
            "date": int(time.time()),
            "chat": chat,
            "from": _from(chat_id),
            **content,
        },
    }


def text_update(chat_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    return message_update(chat_id, update_id, text=text)


def callback_update(chat_id: int, data: str, update_id: int | None = None) -> dict[str, Any]:
    """A press on an inline button carrying ``data`` under a bot message in ``chat_id``."""
    return {
        "update_id": update_id or next_id(),
        "callback_query": {
            "id": str(next_id()),
            "from": _from(chat_id),
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": next_id(),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": "Pick one",
            },
        },
    }


def photo_update(chat_id: int, caption: str | None = None) -> dict[str, Any]:
    sizes = [
        {
            "file_id": f"photo-{w}",
            "file_unique_id": f"u{w}",
            "width": w,
            "height": w,
            "file_size": w * 10,
        }
        for w in (90, 320, 1280)
    ]
    extra: dict[str, Any] = {"caption": caption} if caption else {}
    return message_update(chat_id, photo=sizes, **extra)


def sticker_update(chat_id: int) -> dict[str, Any]:
    sticker = {
        "file_id": "sticker-1",
        "file_unique_id": "s1",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
        "emoji": "👍",
        "file_size": 2048,
    }
    return message_update(chat_id, sticker=sticker)
