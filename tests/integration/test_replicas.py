"""Two gateway replicas read one reply stream: a conversation's replies still reach the
platform in the order the worker wrote them, whichever replica reads which."""

from __future__ import annotations

import urllib.request

import aiohttp

from tests.fakes.telegram import FakeTelegram, next_id, text_update
from tests.integration.test_telegram import post, texts
from tests.support.servers import Proc, Stack, free_port, until


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


async def test_replies_of_one_chat_keep_their_order_across_two_replicas(
    http: aiohttp.ClientSession, script_stack: Stack, fake_telegram: FakeTelegram
) -> None:
    env = {**script_stack.env, "OMNIGATE_GATEWAY_ID": "script-gw-2"}
    port = free_port()
    second = Proc("script-gateway-2", ["gateway", "--port", str(port)], env, script_stack.log_dir)
    second.start()
    try:
        await until(lambda: _healthy(port), 60, "the second replica")
        chat = next_id()
        for i in range(5):
            status, _ = await post(http, script_stack, text_update(chat, f"echo: {i}"))
            assert status == 200
        calls = await fake_telegram.wait_for(chat, 5, timeout=60)
        assert texts(calls) == [f"echo: {i}" for i in range(5)]
    finally:
        second.stop()
