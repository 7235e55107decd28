"""Web visitor sessions are not free: new ones are limited per client address, and a token
renews only until its session reaches its maximum age."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from channels import constants as K
from gateway.app import create_app
from gateway.settings import load_settings
from tests.support.servers import RedisServer


@pytest.fixture
async def gateway(redis_server: RedisServer) -> AsyncIterator[TestClient]:
    settings = load_settings(
        OMNIGATE_REDIS_URL=redis_server.url(7),
        OMNIGATE_GATEWAY_ID="web-sessions-test",
        OMNIGATE_WEB_SECRET="web-sessions-secret",
        OMNIGATE_WEB_NEW_SESSIONS_PER_MIN=3,
    )
    r = aioredis.Redis.from_url(redis_server.url(7))
    await r.flushdb()
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c
    await r.flushdb()
    await r.aclose()


async def test_one_address_cannot_open_sessions_without_end(gateway: TestClient) -> None:
    statuses = [(await gateway.post("/web/session")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await gateway.post("/web/session")
    assert "too many new chat sessions" in (await refused.json())["error"]


async def test_a_token_renews_until_its_session_is_too_old(
    gateway: TestClient, redis_server: RedisServer
) -> None:
    first = await (await gateway.post("/web/session")).json()
    renewed = await (await gateway.post("/web/session", json={"token": first["token"]})).json()
    assert renewed["session_id"] == first["session_id"]
    # The session reaches its maximum age (its start mark expires).
    r = aioredis.Redis.from_url(redis_server.url(7))
    await r.delete(K.WEB_SESSION + first["session_id"])
    await r.aclose()
    later = await (await gateway.post("/web/session", json={"token": renewed["token"]})).json()
    assert later["session_id"] != first["session_id"]
