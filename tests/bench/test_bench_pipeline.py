"""Turn round trip through the whole pipeline (HTTP → Celery → worker → reply stream → HTTP)
with a trivial brain step, against a bare aiohttp handler doing one Redis LPUSH + BRPOP.

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_pipeline.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from tests.bench.conftest import summary
from tests.support.servers import BackgroundServer, RedisServer, Stack

REDIS = web.AppKey("redis", aioredis.Redis)
TURNS_PER_LEVEL = 300
LEVELS = (1, 10, 50)


@pytest.fixture(scope="module")
def baseline(redis_server: RedisServer) -> Iterator[BackgroundServer]:
    async def handler(request: web.Request) -> web.Response:
        r: aioredis.Redis = request.app[REDIS]
        body = await request.json()
        key = f"bench:{uuid.uuid4().hex}"
        await r.lpush(key, json.dumps(body))
        _, raw = await r.brpop([key], timeout=5)
        return web.json_response({"replies": [{"text": json.loads(raw)["text"]}]})

    async def on_start(app: web.Application) -> None:
        app[REDIS] = aioredis.Redis.from_url(redis_server.url(3))

    app = web.Application()
    app.router.add_post("/api/chat", handler)
    app.on_startup.append(on_start)
    server = BackgroundServer(app)
    yield server
    server.stop()


async def _load(url: str, concurrency: int, turns: int) -> dict[str, float]:
    latencies: list[float] = []

    async def conversation(http: aiohttp.ClientSession, user: str, n: int) -> None:
        for i in range(n):
            started = time.perf_counter()
            async with http.post(f"{url}/api/chat", json={"user": user, "text": f"echo: {i}"}) as r:
                assert r.status == 200, await r.text()
                await r.read()
            latencies.append(time.perf_counter() - started)

    per_conv = max(1, turns // concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency + 5)
    async with aiohttp.ClientSession(connector=conn) as http:
        await conversation(http, f"warm-{uuid.uuid4().hex}", 5)
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(
            *(conversation(http, f"b-{uuid.uuid4().hex}", per_conv) for _ in range(concurrency))
        )
        wall = time.perf_counter() - started
    return summary(latencies, wall)


@pytest.mark.bench
async def test_turn_round_trip_against_bare_redis_handler(
    script_stack: Stack, baseline: BackgroundServer
) -> None:
    rows = []
    for c in LEVELS:
        base = await _load(baseline.url, c, TURNS_PER_LEVEL)
        ours = await _load(script_stack.url, c, TURNS_PER_LEVEL)
        rows.append(
            {
                "concurrency": c,
                "omnigate": ours,
                "baseline": base,
                "p50_ratio": round(ours["p50_ms"] / base["p50_ms"], 1),
                "throughput_ratio": round(ours["per_s"] / base["per_s"], 3),
            }
        )
    print("\nturn round trip (trivial brain) vs bare aiohttp + Redis LPUSH/BRPOP")
    print(
        f"{'conc':>5} {'og p50':>9} {'og p99':>9} {'og /s':>8} | {'base p50':>9} "
        f"{'base p99':>9} {'base /s':>8} | p50 x"
    )
    for row in rows:
        o, b = row["omnigate"], row["baseline"]
        print(
            f"{row['concurrency']:>5} {o['p50_ms']:>9} {o['p99_ms']:>9} {o['per_s']:>8} | "
            f"{b['p50_ms']:>9} {b['p99_ms']:>9} {b['per_s']:>8} | {row['p50_ratio']}"
        )
    print(json.dumps({"bench": "pipeline", "rows": rows}))
    assert all(row["omnigate"]["n"] > 0 for row in rows)
