"""Nothing acknowledged is lost: a worker killed mid-turn, or a gateway killed while replies
are pending, delays a reply and neither drops nor doubles it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from tests.conftest import chat, stack_env, uid
from tests.support.servers import RedisServer, Stack, free_port, until


@pytest.fixture(scope="module")
def crash_stack(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("crash")
    env = stack_env(
        redis_server.url(4),
        {
            "OMNIGATE_BRAIN": "tests.support.script_brain:ScriptBrain",
            "OMNIGATE_GATEWAY_ID": "crash-gw",
        },
    )
    stack = Stack(
        "crash",
        env,
        workdir,
        free_port(),
        ["--pool", "prefork", "--concurrency", "1", "--hostname", "crash@%h"],
    )
    stack.start()
    yield stack
    stack.stop()


def _history(stack: Stack, conv: str) -> list[str]:
    raw = redis.Redis.from_url(stack.redis_url).get(f"og:session:{conv}")
    return [h["text"] for h in json.loads(raw or b'{"history": []}')["history"]]


async def test_a_worker_killed_mid_turn_answers_after_a_new_worker_starts(
    http: aiohttp.ClientSession, crash_stack: Stack
) -> None:
    user = uid("u")
    pending = asyncio.create_task(chat(http, crash_stack, user, "sleep: 3 survived"))
    r = redis.Redis.from_url(crash_stack.redis_url)
    await until(lambda: r.llen(f"og:processing:api:{user}") == 1, 30, "the turn to start")
    crash_stack.worker.kill()
    assert not pending.done()

    crash_stack.worker.start()  # e.g. restarted by its supervisor
    replies = await asyncio.wait_for(pending, 90)
    assert [x["text"] for x in replies] == ["survived"]
    assert _history(crash_stack, f"api:{user}") == ["sleep: 3 survived", "survived"]


async def test_replies_pending_while_the_gateway_is_down_are_delivered_after_restart(
    http: aiohttp.ClientSession, crash_stack: Stack
) -> None:
    # A reply produced while no gateway runs waits in the reply stream; the restarted gateway
    # (same consumer name) picks it up and acknowledges it after delivering it.
    r = redis.Redis.from_url(crash_stack.redis_url)
    user = uid("u")
    pending = asyncio.create_task(chat(http, crash_stack, user, "sleep: 2 while-down"))
    await until(lambda: r.llen(f"og:processing:api:{user}") == 1, 30, "the turn to start")
    crash_stack.gateway.kill()
    with pytest.raises(aiohttp.ClientError):
        await pending
    await until(lambda: not r.exists(f"og:processing:api:{user}"), 30, "the turn to finish")
    assert r.xlen("og:replies") >= 1  # written, not yet delivered

    crash_stack.start_gateway()
    await until(lambda: r.xlen("og:replies") == 0, 30, "the pending reply to be delivered")
    assert r.xpending("og:replies", "gateway")["pending"] == 0
    assert _history(crash_stack, f"api:{user}") == ["sleep: 2 while-down", "while-down"]
