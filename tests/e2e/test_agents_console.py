"""The web agents' console in headless Chromium beside the chat widget: the customer on the demo
shop page, the agent in the console on another page (the web console is the only agents'
console of ``agents_stack``: no Slack)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.conftest import add_agent, uid
from tests.e2e.test_widget import bot, open_chat, say
from tests.support.servers import Stack

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


async def sign_in(page: Any, stack: Stack, name: str) -> None:
    await page.goto(stack.url + "/agent")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


async def test_an_agent_answers_a_widget_customer_from_the_console(
    browser: Any, page: Any, agents_stack: Stack
) -> None:
    agent = uid("agent")
    add_agent(agents_stack, agent, PASSWORD)
    console_context = await browser.new_context(viewport={"width": 1280, "height": 800})
    console = await console_context.new_page()
    console.set_default_timeout(15_000)
    console_errors: list[str] = []
    console.on("pageerror", lambda exc: console_errors.append(str(exc)))
    await sign_in(console, agents_stack, agent)

    await open_chat(page, agents_stack)
    await say(page, "handoff")
    await expect(bot(page).last).to_have_text("Connecting you with a human.")

    # The conversation appears in the queue without a reload, with its wait time (the other
    # tests of this stack hand off /api/chat customers: this is the one web customer).
    queue = console.get_by_role("list", name="Queue")
    waiting = queue.get_by_role("button").filter(has_text="on web")
    await expect(waiting).to_have_count(1)
    await expect(waiting.first).to_contain_text("not taken")
    await expect(waiting.first.locator(".wait")).to_have_text(re.compile(r"^\d+s$"))
    await waiting.first.click()
    transcript = console.get_by_role("list", name="Transcript")
    await expect(transcript).to_contain_text("Customerhandoff")
    await expect(transcript).to_contain_text("BotConnecting you with a human.")

    await console.get_by_label("Reply to the customer").fill("Hi, I'm Grace from the shop.")
    await console.get_by_role("button", name="Send").click()
    await expect(bot(page).last).to_have_text("Hi, I'm Grace from the shop.")
    await expect(transcript).to_contain_text("AgentHi, I'm Grace from the shop.")
    await expect(waiting.first).to_contain_text(f"taken by {agent}")

    # The customer writes back: the agent sees it live.
    await say(page, "thanks, my order is late")
    await expect(transcript).to_contain_text("Customerthanks, my order is late")

    # Back with the bot, the handoff is over: the customer is asked whether it solved the
    # problem, right after the notice that the bot is back.
    await console.get_by_role("button", name="Return to bot").click()
    await expect(bot(page).last).to_have_text("Did this solve your problem?")
    assert (await bot(page).all_inner_texts())[-2:] == [
        "You're back with the shop's assistant. How can I help?",
        "Did this solve your problem?",
    ]
    await expect(waiting).to_have_count(0)
    await expect(transcript).to_contain_text("(returned the conversation to the bot)")
    assert console_errors == [] and page.js_errors == []
    await console_context.close()
