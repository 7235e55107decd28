"""Feedback for ``omnigate learn``, recorded by the worker inside the turn on a real stack
(gateway, Celery worker, Redis; the scripted brain says when it is unsure, and the web agents'
console settles conversations): a pick on "Did you mean…?", a thumbs-down ("No" to "Did this
solve your problem?") and an agent closing a conversation under an intent, and ``omnigate
forget`` erasing them."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import aiohttp
import redis

from channels import constants as K
from gateway import feedback
from gateway.feedback import Example
from tests.conftest import chat, uid
from tests.fakes.slack import AGENT_CHANNEL, FakeSlack, dm_event, next_id, slash_command
from tests.integration.test_agents_console import (
    agent_http,
    new_agent,
    post,
    until_async,
    until_queued,
)
from tests.integration.test_handoff import opening_of, slack, slack_event
from tests.support.servers import ROOT, Stack
from workers.satisfaction import NO, QUESTION, SORRY

__all__ = ["agent_http"]  # the fixture, used by name


def examples(stack: Stack, conv: str) -> list[Example]:
    r = redis.Redis.from_url(stack.redis_url)
    return sorted(feedback.examples_of(r, conv).values(), key=lambda e: e.at)


async def until_examples(stack: Stack, conv: str, where: Any, what: str) -> list[Example]:
    """The conversation's examples once ``where(examples)`` holds (the worker writes them just
    after the reply)."""
    found: list[Example] = []

    async def ready() -> bool:
        found[:] = examples(stack, conv)
        return bool(where(found))

    await until_async(ready, what)
    return found


async def test_a_pick_on_did_you_mean_labels_the_unclear_message(
    http: aiohttp.ClientSession, agents_stack: Stack
) -> None:
    user = uid("pick")
    conv = f"api:{user}"
    [asked] = await chat(http, agents_stack, user, "clarify: wheres my stuf")
    [track] = [b for b in asked["buttons"] if b["payload"] == "intent:track_order"]
    await chat(http, agents_stack, user, track["title"], payload=track["payload"])

    [example] = await until_examples(agents_stack, conv, lambda f: f, "the picked example")
    assert (example.text, example.label, example.source) == (
        "clarify: wheres my stuf",
        "track_order",
        "pick",
    )
    assert example.predicted == "clarification" and not example.flagged
    # Kept as long as the conversation records, no longer.
    ttl = redis.Redis.from_url(agents_stack.redis_url).ttl(K.FEEDBACK + conv)
    assert 0 < ttl <= 30 * 86400


async def test_a_pick_from_the_menu_labels_nothing(
    http: aiohttp.ClientSession, agents_stack: Stack
) -> None:
    user = uid("menu")
    await chat(http, agents_stack, user, "as: greeting hello")
    await chat(http, agents_stack, user, "Track an order", payload="intent:track_order")
    # The next turn's feedback comes after this one's: once it is there, the pick's would be.
    [asked] = await chat(http, agents_stack, user, "clarify: hm")
    await chat(http, agents_stack, user, "Get a refund", payload=asked["buttons"][1]["payload"])
    found = await until_examples(agents_stack, f"api:{user}", lambda f: f, "the second pick")
    assert [(e.text, e.label) for e in found] == [("clarify: hm", "get_refund")]


async def test_a_thumbs_down_flags_the_answers_until_an_agent_settles_them(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    _, csrf = await new_agent(agent_http, agents_stack)
    user = uid("down")
    conv = f"api:{user}"
    await chat(http, agents_stack, user, "as: greeting hi there")
    await chat(http, agents_stack, user, "as: delivery_period my kettle came broken")
    replies = await chat(http, agents_stack, user, "as: thanks ok thanks")
    [question] = [r for r in replies if r["text"] == QUESTION]
    [no] = [b for b in question["buttons"] if b["payload"] == NO]
    [sorry] = await chat(http, agents_stack, user, no["title"], payload=no["payload"])
    assert sorry["text"] == SORRY

    # The answer the customer doubted is flagged, with no label yet (small talk is not).
    [flagged] = await until_examples(agents_stack, conv, lambda f: f, "the flagged example")
    assert (flagged.text, flagged.flagged, flagged.label) == (
        "as: delivery_period my kettle came broken",
        True,
        None,
    )

    # The customer comes back, and an agent settles it as a refund.
    await chat(http, agents_stack, user, "handoff")
    await until_queued(agent_http, agents_stack, conv)
    status, _ = await post(
        agent_http, agents_stack, "/agent/api/close", csrf, conv=conv, intent="get_refund"
    )
    assert status == 200
    [settled] = await until_examples(
        agents_stack, conv, lambda f: f and f[0].label, "the agent's label"
    )
    assert (settled.text, settled.label, settled.source) == (
        "as: delivery_period my kettle came broken",
        "get_refund",
        "agent",
    )


async def test_an_agent_closing_under_an_intent_labels_what_the_bot_misread(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    _, csrf = await new_agent(agent_http, agents_stack)
    user = uid("settle")
    conv = f"api:{user}"
    await chat(http, agents_stack, user, "as: greeting hello")
    await chat(http, agents_stack, user, "oos: the kettle is broken I want my money")
    await chat(http, agents_stack, user, "handoff")
    await until_queued(agent_http, agents_stack, conv)

    status, body = await post(
        agent_http, agents_stack, "/agent/api/close", csrf, conv=conv, intent="no_such_intent"
    )
    assert (status, body["error"]) == (
        400,
        "unknown intent 'no_such_intent'; see /agent/api/intents",
    )
    async with agent_http.get(f"{agents_stack.url}/agent/api/intents") as resp:
        offered = {i["name"]: i["title"] for i in (await resp.json())["intents"]}
    assert offered["get_refund"] == "Get a refund" and "out_of_scope" in offered
    status, _ = await post(
        agent_http, agents_stack, "/agent/api/close", csrf, conv=conv, intent="get_refund"
    )
    assert status == 200

    # Only the message the bot could not answer gets the agent's label, not the greeting.
    [example] = await until_examples(agents_stack, conv, lambda f: f, "the agent's label")
    assert (example.text, example.predicted, example.label, example.source) == (
        "oos: the kettle is broken I want my money",
        "out_of_scope",
        "get_refund",
        "agent",
    )


async def test_an_agent_in_slack_settles_by_command(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    conv = f"slack:{dm}"
    await slack_event(http, script_stack, dm_event(dm, "UBUYER", "oos: kettle broken, money back"))
    await slack_event(http, script_stack, dm_event(dm, "UBUYER", "handoff"))
    await opening_of(fake_slack, script_stack, conv)
    status, text = await slack(
        http,
        script_stack,
        slash_command(AGENT_CHANNEL, "UAGENT3", f"resolve {conv} refund_please"),
        form=True,
    )
    assert status == 200 and "`refund_please` is not an intent of the model" in text
    status, text = await slack(
        http,
        script_stack,
        slash_command(AGENT_CHANNEL, "UAGENT3", f"resolve {conv} get_refund"),
        form=True,
    )
    assert status == 200 and "settled as `get_refund`" in text
    [example] = await until_examples(script_stack, conv, lambda f: f, "the agent's label")
    assert (example.text, example.label, example.source) == (
        "oos: kettle broken, money back",
        "get_refund",
        "agent",
    )


async def test_forget_erases_the_persons_feedback(
    http: aiohttp.ClientSession, agents_stack: Stack
) -> None:
    user = uid("forgotten")
    conv = f"api:{user}"
    [asked] = await chat(http, agents_stack, user, "clarify: my parcel??")
    await chat(http, agents_stack, user, "Track an order", payload=asked["buttons"][0]["payload"])
    await until_examples(agents_stack, conv, lambda f: f, "the picked example")

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "forget", conv],
        env=agents_stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    r = redis.Redis.from_url(agents_stack.redis_url)
    assert not r.exists(K.FEEDBACK + conv, K.FEEDBACK_TURNS + conv)
    assert r.zscore(K.FEEDBACK_INDEX, conv) is None
