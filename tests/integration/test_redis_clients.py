"""Redis clients give up on a Redis that stops answering instead of blocking forever."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.redis_clients import async_client, sync_client
from tests.support.servers import RedisServer


@pytest.fixture
def frozen_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that accepts connections (the kernel does) but never answers: as a
    Redis host that hangs, or a connection a NAT silently dropped."""
    server = RedisServer(tmp_path / "frozen")
    os.kill(server.proc.pid, signal.SIGSTOP)
    yield server
    os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


async def test_a_redis_that_stops_answering_fails_calls_instead_of_hanging_them(
    frozen_redis: RedisServer,
) -> None:
    r = async_client(frozen_redis.url())
    sync_call = asyncio.to_thread(sync_client(frozen_redis.url()).get, "og:anything")
    results = await asyncio.gather(r.get("og:anything"), sync_call, return_exceptions=True)
    assert [type(e) for e in results] == [redis.TimeoutError, redis.TimeoutError]
    await r.aclose()
