"""The satisfaction question: asked once when a conversation ends (here: the quiet period, on a
stack where it is two seconds, and an agent's "Return to bot"), with two buttons, and the answer
counted by ``omnigate stats``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import stack_env
from tests.integration.test_handoff import WebCustomer
from tests.support.servers import ROOT, RedisServer, Stack, free_port
from workers.satisfaction import QUESTION, THANKS, YES

QUIET_S = 2


@pytest.fixture(scope="module")
def quiet_stack(redis_server: RedisServer, session_dir: Path) -> Iterator[Stack]:
    """Gateway + one worker with the scripted brain, conversations ending after 2 s of quiet
    (Redis db 5, so its numbers are this module's alone)."""
    env = stack_env(
        redis_server.url(5),
        {
            "OMNIGATE_BRAIN": "tests.support.script_brain:ScriptBrain",
            "OMNIGATE_GATEWAY_ID": "quiet-gw",
            "OMNIGATE_CONVERSATION_QUIET": str(QUIET_S),
        },
    )
    stack = Stack(
        "quiet", env, session_dir, free_port(), ["--pool", "threads", "--hostname", "quiet@%h"]
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
async def customer(http: aiohttp.ClientSession, quiet_stack: Stack) -> AsyncIterator[WebCustomer]:
    async with http.post(f"{quiet_stack.url}/web/session", json={}) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    async with http.ws_connect(f"{quiet_stack.url}/web/ws") as ws:
        await ws.send_json({"type": "auth", "token": body["token"]})
        yield WebCustomer(ws, body["session_id"])


def stats(stack: Stack) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "stats", "--json"],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def test_a_quiet_conversation_is_asked_once_whether_it_solved_the_problem(
    customer: WebCustomer,
) -> None:
    await customer.say("echo: where is my parcel")
    assert (await customer.reply())["text"] == "echo: where is my parcel"
    asked = await customer.reply(timeout=QUIET_S + 30)
    assert asked["text"] == QUESTION
    assert [b["title"] for b in asked["buttons"]] == ["Yes", "No"]
    await customer.silent(QUIET_S * 3)


async def test_the_answer_is_counted_in_the_stats(
    customer: WebCustomer, quiet_stack: Stack
) -> None:
    before = stats(quiet_stack)
    await customer.say("echo: do you ship to Norway")
    await customer.reply()
    asked = await customer.reply(timeout=QUIET_S + 30)
    [yes] = [b for b in asked["buttons"] if b["payload"] == YES]
    await customer.ws.send_json(
        {"type": "message", "id": "yes-1", "text": yes["title"], "payload": yes["payload"]}
    )
    assert (await customer.reply())["text"] == THANKS
    after = stats(quiet_stack)
    assert after["csat_answers"] == before["csat_answers"] + 1
    assert after["csat"] is not None and after["csat"] > 0
    assert after["conversations"] == before["conversations"] + 1
