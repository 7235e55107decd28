"""``omnigate stats --json`` after a conversation with the real shop brain through the running
stack (``POST /api/chat``, Redis, the Celery worker)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import aiohttp

from tests.conftest import chat, uid
from tests.support.servers import ROOT, Stack
from workers.satisfaction import QUESTION

ODD_QUESTION = "can you write me a poem about the moon landing"


def stats(stack: Stack) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "stats", "--since", "1d", "--json"],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def test_a_conversation_shows_in_the_stats_with_the_question_it_could_not_answer(
    http: aiohttp.ClientSession, shop_stack: Stack
) -> None:
    before = stats(shop_stack)
    user = uid("stats")
    await chat(http, shop_stack, user, "hello")
    await chat(http, shop_stack, user, ODD_QUESTION)
    closing = await chat(http, shop_stack, user, "thank you, bye")
    assert QUESTION in [r["text"] for r in closing]
    after = stats(shop_stack)
    assert after["conversations"] == before["conversations"] + 1
    assert after["per_channel"]["api"] == before["per_channel"].get("api", 0) + 1
    asked = [g["question"] for g in after["unanswered"]] + [
        e for g in after["unanswered"] for e in g["examples"]
    ]
    assert ODD_QUESTION in asked
    assert after["csat_asked"] == before["csat_asked"] + 1
    assert {"conversations", "handoffs", "resolution_rate", "csat", "unanswered"} <= set(after)
