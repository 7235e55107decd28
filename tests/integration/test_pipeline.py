"""The pipeline end to end: HTTP → Celery → worker → reply stream → HTTP, with real Redis and
real Celery worker processes (the scripted brain stands in for the shop's)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import redis

from tests.conftest import chat, uid
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


async def test_twenty_messages_at_once_are_answered_one_at_a_time_in_order(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    # Sent 20 ms apart, each turn taking 50 ms, so most are in flight together on three worker
    # threads/processes. Were two turns of the conversation to run at once, both would load the
    # same session and one's write would lose the other's line of the transcript.
    user = uid("u")
    pending = []
    for i in range(20):
        pending.append(asyncio.create_task(chat(http, script_stack, user, f"sleep: 0.05 m{i}")))
        await asyncio.sleep(0.02)
    results = await asyncio.gather(*pending)
    assert [r[0]["text"] for r in results] == [f"m{i}" for i in range(20)]
    r = redis.Redis.from_url(script_stack.redis_url)
    session = json.loads(r.get(f"og:session:api:{user}") or b"{}")
    said = [h["text"] for h in session["history"] if h["role"] == "user"]
    assert said == [f"sleep: 0.05 m{i}" for i in range(20)][-len(said) :]
    assert session["slots"]["turns"] == 20
