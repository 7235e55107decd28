"""The web agents' console over HTTP, against a real gateway and worker with no Slack: sign-in,
CSRF, the queue, taking a conversation, replying and handing it back to the bot. The browser
test (tests/e2e/test_agents_console.py) has the widget and the console side by side."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import add_agent, chat, uid
from tests.support.servers import Stack

PASSWORD = "correct horse battery"


@pytest.fixture
async def agent_http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like client for one agent: it keeps cookies, also for 127.0.0.1."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield session


async def sign_in(http: aiohttp.ClientSession, stack: Stack, name: str, password: str) -> str:
    """Sign in through the form; returns the console page's CSRF token."""
    async with http.post(
        f"{stack.url}/agent/login", data={"name": name, "password": password}
    ) as resp:
        page = await resp.text()
        assert resp.status == 200 and resp.url.path == "/agent", page
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    return match.group(1)


async def new_agent(http: aiohttp.ClientSession, stack: Stack) -> tuple[str, str]:
    name = uid("agent")
    add_agent(stack, name, PASSWORD)
    return name, await sign_in(http, stack, name, PASSWORD)


async def handed_off(http: aiohttp.ClientSession, stack: Stack) -> str:
    """A customer on /api/chat who asked for a person; their conversation key."""
    user = uid("cust")
    await chat(http, stack, user, "handoff")
    return f"api:{user}"


async def post(
    http: aiohttp.ClientSession, stack: Stack, path: str, csrf: str | None, **body: Any
) -> tuple[int, dict[str, Any]]:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with http.post(f"{stack.url}{path}", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def get(http: aiohttp.ClientSession, stack: Stack, path: str) -> dict[str, Any]:
    async with http.get(f"{stack.url}{path}") as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def queued(http: aiohttp.ClientSession, stack: Stack) -> list[str]:
    return [i["conv"] for i in (await get(http, stack, "/agent/api/queue"))["queue"]]


async def test_the_console_asks_for_a_sign_in(agent_http: Any, agents_stack: Stack) -> None:
    async with agent_http.get(f"{agents_stack.url}/agent") as resp:
        assert resp.url.path == "/agent/login"
        assert "Sign in" in await resp.text()


async def test_a_wrong_password_is_refused(agent_http: Any, agents_stack: Stack) -> None:
    name = uid("agent")
    add_agent(agents_stack, name, PASSWORD)
    async with agent_http.post(
        f"{agents_stack.url}/agent/login", data={"name": name, "password": "not it at all"}
    ) as resp:
        assert resp.status == 401
        assert "Wrong name or password." in await resp.text()
    async with agent_http.get(f"{agents_stack.url}/agent/api/queue") as resp:
        assert resp.status == 401


async def test_repeated_wrong_passwords_lock_the_name_for_a_while(
    agent_http: Any, agents_stack: Stack
) -> None:
    name = uid("agent")
    add_agent(agents_stack, name, PASSWORD)
    statuses = []
    for _ in range(6):
        async with agent_http.post(
            f"{agents_stack.url}/agent/login", data={"name": name, "password": "guess-guess"}
        ) as resp:
            statuses.append(resp.status)
    assert statuses == [401] * 5 + [429]
    async with agent_http.post(
        f"{agents_stack.url}/agent/login", data={"name": name, "password": PASSWORD}
    ) as resp:
        assert resp.status == 429
        assert "Too many failed sign-ins" in await resp.text()


async def test_an_action_without_the_csrf_token_is_refused(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    await new_agent(agent_http, agents_stack)
    conv = await handed_off(http, agents_stack)
    status, body = await post(
        agent_http, agents_stack, "/agent/api/reply", None, conv=conv, text="hi"
    )
    assert status == 403
    assert "CSRF" in body["error"]


async def test_a_handoff_waits_in_the_queue(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    await new_agent(agent_http, agents_stack)
    conv = await handed_off(http, agents_stack)
    await until_queued(agent_http, agents_stack, conv)
    item = next(
        i
        for i in (await get(agent_http, agents_stack, "/agent/api/queue"))["queue"]
        if i["conv"] == conv
    )
    assert item["channel"] == "api" and item["reason"] == "handoff" and item["taken_by"] is None


async def test_a_second_agent_cannot_take_a_taken_conversation(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    first, csrf = await new_agent(agent_http, agents_stack)
    conv = await handed_off(http, agents_stack)
    assert (await post(agent_http, agents_stack, "/agent/api/take", csrf, conv=conv))[0] == 200
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        _, csrf2 = await new_agent(other, agents_stack)
        status, body = await post(other, agents_stack, "/agent/api/take", csrf2, conv=conv)
    assert status == 409
    assert body["error"] == f"Already taken by {first}."


async def test_the_agents_reply_is_in_the_transcript_and_the_handoff_record(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    name, csrf = await new_agent(agent_http, agents_stack)
    conv = await handed_off(http, agents_stack)
    status, _ = await post(
        agent_http, agents_stack, "/agent/api/reply", csrf, conv=conv, text="Hello, I'm here"
    )
    assert status == 200
    view: dict[str, Any] = {}

    async def answered() -> bool:
        view.update(await get(agent_http, agents_stack, f"/agent/api/conversation?conv={conv}"))
        return {"role": "agent", "text": "Hello, I'm here"} in [
            {"role": t["role"], "text": t["text"]} for t in view["transcript"]
        ]

    await until_async(answered, "the agent's reply in the transcript")
    assert view["taken_by"] == name
    assert view["summary"]  # the bot's summary of what the customer asked


async def test_return_to_bot_gives_the_conversation_back(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    _, csrf = await new_agent(agent_http, agents_stack)
    user = uid("cust")
    await chat(http, agents_stack, user, "handoff")
    conv = f"api:{user}"
    await until_queued(agent_http, agents_stack, conv)
    assert (await post(agent_http, agents_stack, "/agent/api/return", csrf, conv=conv))[0] == 200

    async def gone() -> bool:
        return conv not in await queued(agent_http, agents_stack)

    await until_async(gone, "the conversation to leave the queue")
    replies = await chat(http, agents_stack, user, "echo: back with you")
    assert [r["text"] for r in replies][-1] == "echo: back with you"


async def until_queued(http: aiohttp.ClientSession, stack: Stack, conv: str) -> None:
    async def listed() -> bool:
        return conv in await queued(http, stack)

    await until_async(listed, f"{conv} in the queue")


async def until_async(check: Any, what: str, timeout: float = 20) -> None:
    """Wait for an async ``check`` (the handoff is written by the worker after its turn)."""
    end = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_close_ends_the_handoff_and_the_transcript_says_so(
    http: aiohttp.ClientSession, agent_http: Any, agents_stack: Stack
) -> None:
    _, csrf = await new_agent(agent_http, agents_stack)
    conv = await handed_off(http, agents_stack)
    assert (await post(agent_http, agents_stack, "/agent/api/close", csrf, conv=conv))[0] == 200
    view: dict[str, Any] = {}

    async def closed() -> bool:
        view.update(await get(agent_http, agents_stack, f"/agent/api/conversation?conv={conv}"))
        return bool(view["state"] == "bot")

    await until_async(closed, "the handoff to close")
    assert view["transcript"][-1]["text"] == "(closed the conversation)"
    status, body = await post(
        agent_http, agents_stack, "/agent/api/reply", csrf, conv=conv, text="one more thing"
    )
    assert (status, body["error"]) == (409, "This conversation is back with the bot.")
