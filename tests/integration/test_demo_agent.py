"""``make demo``'s agent (``omnigate run --demo-agent``): made once with the printed password,
left alone when it exists."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.agents.accounts import verify
from gateway.runner import DEMO_AGENT, DEMO_PASSWORD, demo_agent
from tests.support.servers import RedisServer


def test_the_demo_agent_signs_in_with_the_printed_password(redis_server: RedisServer) -> None:
    url = redis_server.url(9)
    assert demo_agent(url) is True
    assert demo_agent(url) is False  # a second demo keeps the account as it is

    async def signs_in() -> bool:
        r = aioredis.Redis.from_url(url)
        try:
            return await verify(r, DEMO_AGENT, DEMO_PASSWORD, "127.0.0.1")
        finally:
            await r.aclose()

    assert asyncio.run(signs_in())
