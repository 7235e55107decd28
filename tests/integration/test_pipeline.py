"""The pipeline end to end: HTTP → Celery → worker → reply stream → HTTP, with real Redis and
real Celery worker processes (the scripted brain stands in for the shop's)."""

from __future__ import annotations

import json

import aiohttp
import redis

from tests.conftest import chat, uid
from tests.integration.test_web_protocol import message, new_session, open_ws, replies
from tests.support.servers import Stack


async def test_a_turn_goes_through_the_worker_and_back(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    replies = await chat(http, script_stack, uid("u"), "echo: hello")
    assert replies == [{"text": "echo: hello", "buttons": [], "products": [], "handoff": False}]


async def test_session_memory_survives_between_turns(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    user = uid("u")
    await chat(http, script_stack, user, "echo: one")
    await chat(http, script_stack, user, "echo: two")
    r = redis.Redis.from_url(script_stack.redis_url)
    session = r.get(f"og:session:api:{user}")
    assert session is not None and b'"turns":2' in session
    assert 0 < r.ttl(f"og:session:api:{user}") <= 7 * 24 * 3600


async def test_ten_messages_at_once_are_answered_one_at_a_time_in_order(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    # Ten frames on one socket (the widget's burst), so the gateway receives them in a defined
    # order; each turn takes 50 ms, so most wait while the others run on three worker
    # threads/processes. Were two turns of the conversation to run at once, both would load the
    # same session and one's write would lose the other's line of the transcript. (Concurrent
    # HTTP requests have no order of their own: under load the gateway may accept them in any.)
    session = await new_session(http, script_stack.url)
    ws = await open_ws(http, script_stack.url, session["token"])
    try:
        for i in range(10):
            await ws.send_json(message(f"sleep: 0.05 m{i}", mid=f"m{i}"))
        got = await replies(ws, 10, timeout=60)
    finally:
        await ws.close()
    assert [f["reply"]["text"] for f in got] == [f"m{i}" for i in range(10)]
    assert [f["seq"] for f in got] == sorted(f["seq"] for f in got)
    r = redis.Redis.from_url(script_stack.redis_url)
    stored = json.loads(r.get(f"og:session:web:{session['session_id']}") or b"{}")
    said = [h["text"] for h in stored["history"] if h["role"] == "user"]
    assert said == [f"sleep: 0.05 m{i}" for i in range(10)]
    assert stored["slots"]["turns"] == 10
