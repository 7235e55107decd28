"""Readiness is "this gateway can accept work": Redis answers. Workers are a detail of
``/healthz`` and a metric, and nothing scans the keyspace to count them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.settings import load_settings
from tests.support.servers import RedisServer


@pytest.fixture
async def lone_gateway(redis_server: RedisServer) -> AsyncIterator[TestClient]:
    """A gateway on a database no worker serves: as when the only (GPU) worker is down."""
    settings = load_settings(
        OMNIGATE_REDIS_URL=redis_server.url(4), OMNIGATE_GATEWAY_ID="readiness-test"
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def test_a_gateway_without_workers_is_ready_and_says_so_in_healthz(
    lone_gateway: TestClient,
) -> None:
    ready = await lone_gateway.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["redis"] == "ok"
    health = await lone_gateway.get("/healthz")
    assert (await health.json()) == {"status": "ok", "workers": 0}
    metrics = await (await lone_gateway.get("/metrics")).text()
    assert "omnigate_workers_alive 0.0" in metrics


async def test_readiness_and_health_never_scan_the_keyspace(
    lone_gateway: TestClient, redis_server: RedisServer
) -> None:
    r = aioredis.Redis.from_url(redis_server.url(4))

    async def scans() -> int:
        stats = await r.info("commandstats")
        return int(stats.get("cmdstat_scan", {}).get("calls", 0))

    before = await scans()
    for path in ("/readyz", "/healthz", "/metrics"):
        assert (await lone_gateway.get(path)).status == 200
    assert await scans() == before
    await r.aclose()
