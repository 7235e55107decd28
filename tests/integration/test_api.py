"""``POST /api/chat`` and the operational routes: what a client sees for good and bad input."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.conftest import chat, uid
from tests.support.servers import Stack


async def _post(http: aiohttp.ClientSession, stack: Stack, **kw: object) -> tuple[int, dict]:
    async with http.post(f"{stack.url}/api/chat", **kw) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"text": "hi"}', 400, "'user' is required"),
        (b'{"user": "u"}', 400, "'text' is required"),
        (b'{"user": "u", "text": 5}', 400, "'text' is required"),
        (b'{"user": "u", "text": "  "}', 400, "'text' is empty"),
        (b'{"user": "u", "text": "hi", "payload": 3}', 400, "'payload' must be a string"),
        (b'{"user": "u", "text": "' + b"x" * 5000 + b'"}', 413, "longer than 4000"),
    ],
)
async def test_bad_chat_requests_get_a_json_error(
    http: aiohttp.ClientSession, script_stack: Stack, body: bytes, status: int, says: str
) -> None:
    code, data = await _post(http, script_stack, data=body)
    assert code == status
    assert says in data["error"]


async def test_an_oversized_body_is_refused_with_413(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    code, data = await _post(http, script_stack, data=b"x" * (65 * 1024))
    assert code == 413
    assert "too large" in data["error"]


async def test_an_unknown_route_is_a_json_404(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    async with http.get(f"{script_stack.url}/nope") as resp:
        assert resp.status == 404
        assert "error" in await resp.json()


async def test_the_same_message_id_twice_gives_one_turn(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    user = uid("u")
    body = {"user": user, "text": "sleep: 0.3 once", "id": "client-msg-1"}
    first, second = await asyncio.gather(
        _post(http, script_stack, json=body), _post(http, script_stack, json=body)
    )
    statuses = sorted([first[0], second[0]])
    assert statuses == [200, 409]
    ok = first if first[0] == 200 else second
    assert [r["text"] for r in ok[1]["replies"]] == ["once"]
    # The next turn is the conversation's second, not its third.
    assert (await chat(http, script_stack, user, "echo: next"))[0]["text"] == "echo: next"


async def test_a_button_payload_is_a_message(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    replies = await chat(http, script_stack, uid("u"), "", payload="pay:yes")
    assert replies[0]["text"] == "clicked: pay:yes"


async def test_two_replies_of_one_turn_come_back_together(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    replies = await chat(http, script_stack, uid("u"), "two")
    assert [r["text"] for r in replies] == ["first", "second"]


async def test_health_readiness_and_metrics(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    async with http.get(f"{script_stack.url}/healthz") as resp:
        assert resp.status == 200 and (await resp.json())["workers"] >= 2
    async with http.get(f"{script_stack.url}/readyz") as resp:
        assert resp.status == 200 and (await resp.json())["redis"] == "ok"
    await chat(http, script_stack, uid("u"), "echo: counted")
    async with http.get(f"{script_stack.url}/metrics") as resp:
        text = await resp.text()
        assert resp.status == 200
        assert 'omnigate_inbound_total{channel="api"}' in text
        assert "omnigate_api_turn_seconds_count" in text
        assert "omnigate_workers_alive" in text
