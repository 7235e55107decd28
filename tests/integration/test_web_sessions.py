"""Web visitor sessions are not free: new ones are limited per client address (behind a
trusted reverse proxy, the address it forwards), a token renews only until its session reaches
its maximum age, and only the shop's own pages may start one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from channels import constants as K
from gateway.app import create_app
from gateway.settings import load_settings
from tests.support.servers import RedisServer

Gateway = Callable[..., AbstractAsyncContextManager[TestClient]]
SHOP = "https://shop.example"


@pytest.fixture
def gateway_with(redis_server: RedisServer) -> Gateway:
    """A gateway with the web chat, three new sessions a minute per address, and ``extra``
    settings."""

    @asynccontextmanager
    async def start(**extra: object) -> AsyncIterator[TestClient]:
        settings = load_settings(
            OMNIGATE_REDIS_URL=redis_server.url(7),
            OMNIGATE_GATEWAY_ID="web-sessions-test",
            OMNIGATE_WEB_SECRET="web-sessions-secret",
            OMNIGATE_WEB_NEW_SESSIONS_PER_MIN=3,
            **extra,
        )
        r = aioredis.Redis.from_url(redis_server.url(7))
        await r.flushdb()
        async with TestClient(TestServer(create_app(settings))) as c:
            yield c
        await r.flushdb()
        await r.aclose()

    return start


@pytest.fixture
async def gateway(gateway_with: Gateway) -> AsyncIterator[TestClient]:
    async with gateway_with() as c:
        yield c


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


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    gateway_with: Gateway,
) -> None:
    async with gateway_with(OMNIGATE_TRUSTED_PROXIES="127.0.0.0/8") as gateway:

        async def new_session(client: str) -> int:
            # What the client wrote itself comes first; the proxy appends the address it saw.
            forwarded = f"10.9.9.9, {client}"
            return (
                await gateway.post("/web/session", headers={"X-Forwarded-For": forwarded})
            ).status

        assert [await new_session("203.0.113.5") for _ in range(4)] == [200, 200, 200, 429]
        assert await new_session("203.0.113.6") == 200


async def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(gateway: TestClient) -> None:
    statuses = [
        (await gateway.post("/web/session", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


async def test_a_listed_shop_page_starts_a_session(gateway_with: Gateway) -> None:
    async with gateway_with(OMNIGATE_WEB_ORIGINS=SHOP) as gateway:
        resp = await gateway.post("/web/session", headers={"Origin": SHOP})
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == SHOP


async def test_another_sites_page_cannot_start_a_session(gateway_with: Gateway) -> None:
    async with gateway_with(OMNIGATE_WEB_ORIGINS=SHOP) as gateway:
        resp = await gateway.post("/web/session", headers={"Origin": "https://evil.example"})
        assert resp.status == 403
        assert "OMNIGATE_WEB_ORIGINS" in (await resp.json())["error"]
        preflight = await gateway.options(
            "/web/session", headers={"Origin": "https://evil.example"}
        )
        assert preflight.status == 403


async def test_another_sites_page_cannot_open_a_socket(gateway_with: Gateway) -> None:
    async with gateway_with(OMNIGATE_WEB_ORIGINS=SHOP) as gateway:
        resp = await gateway.get(
            "/web/ws",
            headers={
                "Origin": "https://evil.example",
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert resp.status == 403


async def test_the_gateways_own_page_always_starts_a_session(gateway_with: Gateway) -> None:
    async with gateway_with(OMNIGATE_WEB_ORIGINS=SHOP) as gateway:
        own = f"http://{gateway.host}:{gateway.port}"
        resp = await gateway.post("/web/session", headers={"Origin": own})
        assert resp.status == 200
