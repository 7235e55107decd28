"""``/metrics`` and ``/admin`` of a running gateway after turns through the stack: the workers'
series (counted in Redis) show on the gateway, and the shop's numbers render as a page."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from tests.conftest import chat, uid
from tests.support.servers import Stack


def series(text: str, name: str) -> dict[str, float]:
    """Every sample of metric ``name``: labels → value."""
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}(\{{[^}}]*\}})? (\S+)", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


async def metrics(http: aiohttp.ClientSession, stack: Stack) -> str:
    async with http.get(f"{stack.url}/metrics") as r:
        assert r.status == 200
        return await r.text()


async def test_a_turn_shows_in_the_workers_series_on_the_gateway(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    api = '{channel="api"}'
    before = series(await metrics(http, script_stack), "omnigate_turns_total")
    await chat(http, script_stack, uid("metrics"), "echo: count me")
    # The worker counts a turn once its reply is committed, so the reply can arrive first.
    for _ in range(50):
        text = await metrics(http, script_stack)
        after = series(text, "omnigate_turns_total")
        if after.get(api, 0) > before.get(api, 0):
            break
        await asyncio.sleep(0.1)
    assert after[api] == before.get(api, 0) + 1
    assert series(text, "omnigate_turn_seconds_count")[""] >= 1
    assert set(series(text, "omnigate_queue_depth")) == {'{queue="brain"}', '{queue="deliver"}'}
    assert series(text, "omnigate_model_load_seconds")[""] > 0
    assert series(text, "omnigate_inbound_total")['{channel="api"}'] >= 1


async def test_the_admin_page_shows_the_numbers_with_charts(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    await chat(http, script_stack, uid("admin"), "echo: hello admin")
    async with http.get(f"{script_stack.url}/admin?since=1d") as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        page = await r.text()
    assert "Resolved without a human" in page and "CSAT" in page
    assert page.count("<svg") == 2
    assert "<script" not in page and 'src="http' not in page and "<link" not in page
