"""Hostile input to every route and every websocket frame of a real gateway process: each gets
a JSON 4xx (or a 2xx), never a 5xx, and the process stays up and answers.

Bodies are arbitrary bytes, arbitrary JSON, and near-valid platform payloads with fuzzed
fields; Telegram's are sent with the right secret and Slack's validly signed, so they get past
authentication into parsing, where the bugs were."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.slack import sign
from tests.fakes.telegram import SECRET as TELEGRAM_SECRET
from tests.support.servers import Stack

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
# A field's value as a platform bug or an attacker might send it.
anything = json_values | st.text(max_size=200)


def telegram_updates() -> st.SearchStrategy[Any]:
    chat = st.fixed_dictionaries(
        {"id": anything, "type": st.sampled_from(["private", "group"]) | anything}
    )
    message = st.fixed_dictionaries(
        {"message_id": anything, "date": anything, "chat": chat | anything},
        optional={"text": anything, "from": anything, "photo": anything, "document": anything},
    )
    callback = st.fixed_dictionaries(
        {"id": anything, "from": anything, "chat_instance": anything},
        optional={"data": anything, "message": message | anything},
    )
    return st.fixed_dictionaries(
        {"update_id": st.integers(min_value=1, max_value=2**31) | anything},
        optional={"message": message | anything, "callback_query": callback | anything},
    )


def slack_payloads() -> st.SearchStrategy[Any]:
    event = st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "app_mention", "reaction_added"]) | anything},
        optional={
            "channel": anything,
            "user": anything,
            "text": anything,
            "ts": anything,
            "thread_ts": anything,
            "channel_type": st.sampled_from(["im", "channel"]) | anything,
            "files": anything,
            "bot_id": anything,
            "subtype": anything,
        },
    )
    envelope = st.fixed_dictionaries(
        {"type": st.sampled_from(["event_callback", "url_verification"]) | anything},
        optional={
            "event": event | anything,
            "event_id": anything,
            "team_id": anything,
            "challenge": anything,
            "authorizations": anything,
        },
    )
    action = st.fixed_dictionaries(
        {"type": st.just("block_actions") | anything},
        optional={
            "actions": st.lists(
                st.fixed_dictionaries({}, optional={"value": anything, "action_id": anything})
                | anything,
                max_size=2,
            )
            | anything,
            "user": anything,
            "container": anything,
            "channel": anything,
            "message": anything,
            "team": anything,
            "trigger_id": anything,
        },
    )
    return envelope | action | json_values


bodies = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())


def post(stack: Stack, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
    req = urllib.request.Request(stack.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def assert_handled(status: int, body: bytes, content_type: str) -> None:
    """A 2xx, or a 4xx whose body is JSON ``{"error": ...}``."""
    assert status < 500, (status, body[:300])
    if status >= 400:
        assert content_type.startswith("application/json"), (status, content_type, body[:300])
        assert "error" in json.loads(body), body[:300]


@pytest.fixture
def stack(script_stack: Stack) -> Iterator[Stack]:
    yield script_stack
    assert script_stack.gateway.alive(), script_stack.gateway.log()[-3000:]
    assert script_stack._get("/healthz") == 200


CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", ""]
)


@FUZZ
@given(body=bodies, content_type=CONTENT_TYPES)
def test_api_chat_answers_hostile_bodies_with_json_4xx(
    stack: Stack, body: bytes, content_type: str
) -> None:
    # A real user id with a text the scripted brain answers at once, or garbage.
    assert_handled(*post(stack, "/api/chat", body, {"Content-Type": content_type}))


@FUZZ
@given(update=telegram_updates() | json_values, raw=st.binary(max_size=200), use_raw=st.booleans())
def test_telegram_webhook_answers_hostile_updates_with_json_4xx(
    stack: Stack, update: Any, raw: bytes, use_raw: bool
) -> None:
    body = raw if use_raw else json.dumps(update).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
    }
    assert_handled(*post(stack, "/telegram/webhook", body, headers))


@FUZZ
@given(
    payload=slack_payloads(),
    raw=st.binary(max_size=200),
    how=st.sampled_from(["json", "form", "raw"]),
    content_type=CONTENT_TYPES,
)
def test_slack_events_answers_validly_signed_hostile_bodies_with_json_4xx(
    stack: Stack, payload: Any, raw: bytes, how: str, content_type: str
) -> None:
    if how == "json":
        body = json.dumps(payload).encode()
    elif how == "form":
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    else:
        body = raw
    headers = {"Content-Type": content_type, **sign(body)}
    assert_handled(*post(stack, "/slack/events", body, headers))


@FUZZ
@given(body=bodies, content_type=CONTENT_TYPES)
def test_web_session_answers_hostile_bodies_with_json_4xx(
    stack: Stack, body: bytes, content_type: str
) -> None:
    assert_handled(*post(stack, "/web/session", body, {"Content-Type": content_type}))


frames = (
    st.binary(max_size=200).map(lambda b: ("binary", b))
    | st.text(max_size=200).map(lambda t: ("text", t))
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "resume", "auth"]) | anything},
        optional={"id": anything, "text": anything, "after": anything, "token": anything},
    ).map(lambda f: ("text", json.dumps(f)))
    | json_values.map(lambda v: ("text", json.dumps(v)))
)


async def _socket_session(stack: Stack, sent: list[tuple[str, Any]]) -> list[Any]:
    """Open a visitor socket, send ``sent``, then a frame that must be refused; return every
    frame the server sent, up to and including that refusal."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.url}/web/session") as r:
            token = (await r.json())["token"]
        async with http.ws_connect(f"{stack.url}/web/ws") as ws:
            await ws.send_str(json.dumps({"type": "auth", "token": token}))
            for kind, data in sent:
                if kind == "binary":
                    await ws.send_bytes(data)
                else:
                    await ws.send_str(data)
            await ws.send_str('{"type": "nonsense-probe"}')
            got = []
            while True:
                msg = await asyncio.wait_for(ws.receive(), 30)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg  # not closed, not an error
                frame = json.loads(msg.data)
                got.append(frame)
                if frame.get("type") == "error" and "nonsense-probe" in frame.get("error", ""):
                    return got


@FUZZ
@given(sent=st.lists(frames, min_size=1, max_size=5))
def test_websocket_answers_hostile_frames_with_error_frames_and_stays_open(
    stack: Stack, sent: list[tuple[str, Any]]
) -> None:
    got = asyncio.run(_socket_session(stack, sent))
    for frame in got:
        assert isinstance(frame, dict) and frame.get("type") in {"error", "reply", "typing"}
