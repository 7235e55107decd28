"""Human handoff end to end: a customer (web chat, Slack DM) asks for a human (ScriptBrain's
``handoff``), a thread opens in the agents' Slack channel (the fake Slack), the agent's thread
replies reach the customer on their channel, and "Return to bot" / ``/omnigate resolve`` / the
agent timeout give the conversation back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis

from channels import constants as K
from gateway.settings import load_settings
from tests.fakes.slack import (
    AGENT_CHANNEL,
    Call,
    FakeSlack,
    block_actions,
    dm_event,
    event_callback,
    form_body,
    next_id,
    sign,
    slash_command,
    thread_reply,
)
from tests.support.servers import Stack, until
from workers.handoff.state import BACK_WITH_BOT, NOBODY_FREE
from workers.satisfaction import QUESTION


class WebCustomer:
    """A visitor of the web chat on the gateway's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session_id: str) -> None:
        self.ws, self.session_id = ws, session_id
        self.conv = f"web:{session_id}"
        self._ids = iter(range(1, 10_000))

    async def say(self, text: str) -> None:
        await self.ws.send_json({"type": "message", "id": str(next(self._ids)), "text": text})

    async def reply(self, timeout: float = 15) -> dict[str, Any]:
        """The next reply frame's reply (typing frames skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await asyncio.wait_for(
                self.ws.receive_json(), max(deadline - time.monotonic(), 0.01)
            )
            if frame.get("type") == "reply":
                return dict(frame["reply"])
            assert frame.get("type") == "typing", frame

    async def silent(self, seconds: float) -> None:
        """No reply frame within ``seconds``."""
        with pytest.raises(asyncio.TimeoutError):
            await self.reply(seconds)


@pytest.fixture
async def web_customer(
    http: aiohttp.ClientSession, script_stack: Stack
) -> AsyncIterator[WebCustomer]:
    async with http.post(f"{script_stack.url}/web/session", json={}) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    async with http.ws_connect(f"{script_stack.url}/web/ws") as ws:
        await ws.send_json({"type": "auth", "token": body["token"]})
        yield WebCustomer(ws, body["session_id"])


async def slack(
    http: aiohttp.ClientSession, stack: Stack, body: bytes, form: bool = False
) -> tuple[int, str]:
    ctype = "application/x-www-form-urlencoded" if form else "application/json"
    headers = {"Content-Type": ctype, **sign(body)}
    async with http.post(f"{stack.url}/slack/events", data=body, headers=headers) as r:
        return r.status, await r.text()


async def slack_event(http: aiohttp.ClientSession, stack: Stack, event: dict[str, Any]) -> None:
    status, text = await slack(http, stack, json.dumps(event_callback(event)).encode())
    assert status == 200, text


async def opening_of(fake: FakeSlack, stack: Stack, conv: str) -> Call:
    """The handoff's first message in the agents' channel (the thread's root), once the
    gateway has stored its ts as the handoff's thread (just after the fake answered)."""
    [call] = await fake.wait_for(
        AGENT_CHANNEL, where=lambda c: f"`{conv}`" in c.block_texts and c.thread_ts is None
    )
    r = redis.Redis.from_url(stack.redis_url)
    await until(lambda: bool(r.exists(K.AGENT_THREAD + str(call.ts))), 5, "the thread's mapping")
    return call


def in_thread(fake: FakeSlack, root: Call) -> list[str]:
    return [c.block_texts for c in fake.posts(AGENT_CHANNEL, thread_ts=root.ts)]


def session_of(stack: Stack, conv: str) -> dict[str, Any]:
    raw = redis.Redis.from_url(stack.redis_url).get(K.SESSION + conv)
    assert raw is not None
    return dict(json.loads(raw))


async def test_a_web_customer_is_handed_to_an_agent_and_back(
    http: aiohttp.ClientSession,
    script_stack: Stack,
    fake_slack: FakeSlack,
    web_customer: WebCustomer,
) -> None:
    customer = web_customer
    await customer.say("echo: my order 1234 never came")
    assert (await customer.reply())["text"] == "echo: my order 1234 never came"
    await customer.say("handoff")
    reply = await customer.reply()
    assert reply["handoff"] is True

    # A thread opens for the agents, with the customer, their channel and the transcript.
    root = await opening_of(fake_slack, script_stack, customer.conv)
    text = root.block_texts
    assert "on web" in text and "user: echo: my order 1234 never came" in text
    assert "bot: echo: my order 1234 never came" in text and "user: handoff" in text
    [button] = root.blocks[-1]["elements"]
    assert button["value"] == f"og:resolve:{customer.conv}"
    state = session_of(script_stack, customer.conv)
    assert state["state"] == "with_agent" and state["handoff"]["requested_at"]

    # The bot is silent now: the customer's words go to the thread.
    await customer.say("hello? anyone?")
    await fake_slack.wait_for(AGENT_CHANNEL, thread_ts=root.ts)
    [forwarded] = in_thread(fake_slack, root)
    assert forwarded == f"*{customer.session_id}:* hello? anyone?", forwarded
    await customer.silent(0.5)

    # The agent answers in the thread; the customer gets it on the web.
    fake_slack.names["UGRACE"] = "Grace"
    await slack_event(
        http, script_stack, thread_reply(AGENT_CHANNEL, root.ts, "UGRACE", "Hi, I'm *Grace* :wave:")
    )
    reply = await customer.reply()
    assert reply["text"] == "Hi, I'm **Grace** :wave:"
    handoff = session_of(script_stack, customer.conv)["handoff"]
    assert handoff["agent"] == "Grace" and handoff["agent_id"] == "UGRACE"
    assert handoff["accepted_at"] and handoff["thread"] == root.ts

    # "Return to bot": the customer is told, and the bot answers again.
    message = {"type": "message", "ts": root.ts, "text": root.text, "blocks": root.blocks}
    click = block_actions(AGENT_CHANNEL, "UGRACE", button["value"], button["action_id"], message)
    status, _ = await slack(http, script_stack, form_body(click), form=True)
    assert status == 200
    assert (await customer.reply())["text"] == BACK_WITH_BOT
    assert (await customer.reply())["text"] == QUESTION  # the conversation ended
    await customer.say("echo: back with you")
    assert (await customer.reply())["text"] == "echo: back with you"
    assert session_of(script_stack, customer.conv)["state"] == "bot"
    await fake_slack.wait_for(AGENT_CHANNEL, 2, thread_ts=root.ts)
    assert "returned the conversation to the bot" in in_thread(fake_slack, root)[-1]
    [update] = [c for c in fake_slack.calls_of("chat.update") if c.params.get("ts") == root.ts]
    assert update.blocks[-1]["type"] == "context"


async def test_a_slack_customer_gets_the_agent_in_their_dm_and_resolve_by_command(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    conv = f"slack:{dm}"
    await slack_event(http, script_stack, dm_event(dm, "UBUYER", "handoff"))
    await fake_slack.wait_for(dm)
    root = await opening_of(fake_slack, script_stack, conv)
    await slack_event(
        http, script_stack, thread_reply(AGENT_CHANNEL, root.ts, "UAGENT2", "How can I help?")
    )
    calls = await fake_slack.wait_for(dm, 2)
    assert calls[1].text == "How can I help?"
    # The command names the conversation (slash commands carry no thread).
    status, text = await slack(
        http, script_stack, slash_command(AGENT_CHANNEL, "UAGENT2", f"resolve {conv}"), form=True
    )
    assert status == 200 and conv in text
    calls = await fake_slack.wait_for(dm, 4)
    assert [c.text for c in calls[2:4]] == [BACK_WITH_BOT, QUESTION]
    await slack_event(http, script_stack, dm_event(dm, "UBUYER", "echo: bot again"))
    calls = await fake_slack.wait_for(dm, 5)
    assert calls[4].text == "echo: bot again"
    # Outside the agents' channel, or about no open handoff, the command only explains.
    status, text = await slack(
        http, script_stack, slash_command(dm, "UBUYER", f"resolve {conv}"), form=True
    )
    assert status == 200 and "agents' channel" in text


async def test_nobody_answers_in_time_and_the_customer_leaves_an_email(
    http: aiohttp.ClientSession, script_stack: Stack, fake_slack: FakeSlack
) -> None:
    dm = next_id("D")
    conv = f"slack:{dm}"
    await slack_event(http, script_stack, dm_event(dm, "UBUYER", "handoff"))
    root = await opening_of(fake_slack, script_stack, conv)
    hid = session_of(script_stack, conv)["handoff"]["id"]
    # The agent timeout is an hour in tests: fire its task now, twice (a redelivery).
    from gateway.queue import make_celery

    celery = make_celery(load_settings(OMNIGATE_REDIS_URL=script_stack.redis_url))
    for _ in range(2):
        celery.send_task(K.TASK_HANDOFF_TIMEOUT, args=[conv, hid], queue=K.QUEUE_DELIVER)
    calls = await fake_slack.wait_for(dm, 2)
    assert calls[1].text == NOBODY_FREE
    await fake_slack.wait_for(AGENT_CHANNEL, thread_ts=root.ts)
    assert "No agent answered" in in_thread(fake_slack, root)[0]
    await slack_event(http, script_stack, dm_event(dm, "UBUYER", "it's ada@example.com"))
    calls = await fake_slack.wait_for(dm, 4)
    assert "ada@example.com" in calls[2].text
    assert calls[3].text == QUESTION  # the email closed the handoff: the conversation ended
    state = session_of(script_stack, conv)
    assert state["state"] == "bot" and state["handoff"]["email"] == "ada@example.com"
    await slack_event(http, script_stack, dm_event(dm, "UBUYER", "echo: thanks"))
    calls = await fake_slack.wait_for(dm, 5)
    assert [c.text for c in calls][4:] == ["echo: thanks"]  # one timeout notice, not two
    assert [c.text for c in calls].count(NOBODY_FREE) == 1
