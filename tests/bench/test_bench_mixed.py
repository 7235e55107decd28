"""Web conversations that mix small talk (which the LLM words) with shop questions, through
``omnigate run`` with the LLM on, next to the same load with the LLM off measured in the same
run: the LLM must not hold up the turns that do not need it (issue 14's target: p99 with the
LLM on < 3x the p99 with it off). Every message must be answered once and in order.

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_mixed.py``); the phase
length is ``--bench-seconds`` (default 60).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import aiohttp
import pytest

from tests.bench.conftest import summary
from tests.bench.test_bench_load import CYCLE, Run, _calibrate, _web_conversation, omnigate_run

pytestmark = pytest.mark.bench

CONVERSATIONS = 50
MESSAGES = 2 * len(CYCLE)  # per conversation at most


async def _load(url: str, seconds: float, exact: bool) -> dict[str, Any]:
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=180)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:
        expected = await _calibrate(http, url, MESSAGES)
        run = Run()
        loop = asyncio.get_running_loop()
        until_t = loop.time() + seconds
        started = loop.time()
        await asyncio.gather(
            *(
                _web_conversation(http, url, expected, until_t, run, exact=exact)
                for _ in range(CONVERSATIONS)
            )
        )
        figures: dict[str, Any] = summary(run.latencies, loop.time() - started)
        figures["lost_or_doubled"] = len(run.problems)
        figures["problems"] = run.problems[:5]
        return figures


def test_bench_mixed_load_with_the_llm_on(
    tmp_path_factory: pytest.TempPathFactory,
    platform_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    seconds = float(request.config.getoption("--bench-seconds", 60.0))
    with omnigate_run(tmp_path_factory.mktemp("mixed-off"), platform_env) as (stack, _):
        off = asyncio.run(_load(stack.url, seconds, exact=True))
    with omnigate_run(
        tmp_path_factory.mktemp("mixed-on"), platform_env, OMNIGATE_LLM_MODEL="smollm2"
    ) as (stack, _):
        on = asyncio.run(_load(stack.url, seconds, exact=False))
    print(
        json.dumps(
            {
                "bench": "mixed_llm",
                "conversations": CONVERSATIONS,
                "seconds": seconds,
                "llm_off": off,
                "llm_on": on,
                "p99_ratio": round(on["p99_ms"] / off["p99_ms"], 2),
                "load_avg": os.getloadavg()[0],
            }
        )
    )
    assert off["lost_or_doubled"] == 0, off["problems"]
    assert on["lost_or_doubled"] == 0, on["problems"]
