"""The processes' logs: JSON lines tagged with conversation and turn, no customer data in
them even when a brain bug quotes the customer, and the customer told only a plain apology."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.conftest import chat, uid
from tests.support.servers import Stack, until

PRIVATE = "card 4242 4242 4242 4242, ada@example.com, +44 20 7946 0958, 221B Baker Street"


async def test_a_failing_turn_logs_json_without_customer_data(
    http: aiohttp.ClientSession, script_stack: Stack
) -> None:
    user = uid("logs")
    [reply] = await chat(http, script_stack, user, f"fail: {PRIVATE}")
    assert reply["text"] == "Sorry, something went wrong on our side. Please try again in a moment."

    def ours() -> list[dict[str, Any]]:
        lines = [
            json.loads(line)
            for proc in script_stack.workers
            for line in proc.log().splitlines()
            if line.startswith("{")
        ]
        return [line for line in lines if line["conversation"] == f"api:{user}"]

    # Celery logs the task's end after the reply is out; its line carries the same ids.
    await until(
        lambda: any(line["logger"] == "celery.app.trace" for line in ours()), 30, "task's end"
    )
    failure = next(line for line in ours() if "the brain failed" in line["msg"])
    assert failure["turn"]  # the inbound message id
    assert "[card]" in failure["exc"] and "[email]" in failure["exc"]
    for proc in [*script_stack.workers, script_stack.gateway]:
        text = proc.log()
        for secret in ("4242 4242", "ada@example.com", "7946 0958", "Baker Street"):
            assert secret not in text
