"""The chat widget in headless Chromium, on the demo shop page (``GET /``) of a real gateway with
real workers (scripted brain; one test with the real shop brain)."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import expect

from tests.support.servers import BackgroundServer, Stack

pytestmark = pytest.mark.browser

TITLE = "Kestrel Outfitters help"  # the demo page's data-title
GREETING = "Hi! I'm the Kestrel assistant."


async def open_chat(page: Any, stack: Stack) -> None:
    await page.goto(stack.url + "/")
    await page.get_by_role("button", name=f"Open chat: {TITLE}").click()
    await expect(page.get_by_role("dialog", name=TITLE)).to_be_visible()
    await expect(page.locator("#omnigate-chat")).to_have_attribute("data-state", "online")


async def say(page: Any, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    await box.fill(text)
    await box.press("Enter")


def bot(page: Any) -> Any:
    """The bot's bubbles, greeting included."""
    return page.locator(".msg.bot")


def mine(page: Any) -> Any:
    return page.locator(".msg.me")


async def test_a_message_gets_the_bots_reply(page: Any, script_stack: Stack) -> None:
    await open_chat(page, script_stack)
    await expect(bot(page).first).to_contain_text(GREETING)
    await say(page, "echo: hello **there**")
    await expect(mine(page).last).to_have_text("echo: hello there")
    await expect(bot(page).last).to_have_text("echo: hello there")
    # The markdown subset became elements, not markup.
    await expect(bot(page).last.locator("strong")).to_have_text("there")
    assert page.js_errors == []


async def test_the_dialog_is_keyboard_accessible(page: Any, script_stack: Stack) -> None:
    await page.goto(script_stack.url + "/")
    launcher = page.get_by_role("button", name=f"Open chat: {TITLE}")
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await launcher.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=TITLE)
    await expect(dialog).to_be_visible()
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")
    await page.keyboard.type("echo: typed")
    await page.keyboard.press("Enter")
    await expect(bot(page).last).to_have_text("echo: typed")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("button", name=f"Open chat: {TITLE}")).to_be_focused()


async def test_a_button_sends_its_payload(page: Any, script_stack: Stack) -> None:
    await open_chat(page, script_stack)
    await say(page, "buttons")
    await expect(bot(page).last).to_have_text("Pick one")
    await page.get_by_role("button", name="Yes", exact=True).click()
    await expect(bot(page).last).to_have_text("clicked: pay:yes")
    await expect(mine(page).last).to_have_text("Yes")
    await expect(page.get_by_role("button", name="No", exact=True)).to_be_disabled()


async def test_products_show_as_cards_in_a_carousel(page: Any, script_stack: Stack) -> None:
    await open_chat(page, script_stack)
    await say(page, "products")
    cards = page.get_by_role("list", name="Products").get_by_role("listitem")
    await expect(cards).to_have_count(2)
    first = cards.first
    await expect(first.locator(".title")).to_have_text("Trail Runner 2")
    await expect(first.locator(".price")).to_have_text("€89.50")
    await expect(first.get_by_role("link", name="View Trail Runner 2")).to_have_attribute(
        "href", "https://shop.example/p/1"
    )
    await expect(first.locator("img")).to_have_attribute("src", "https://shop.example/1.jpg")
    # The second product has no image: a placeholder, not a broken image.
    await expect(cards.nth(1).locator("img")).to_have_count(0)
    overflow = await page.locator(".cards").evaluate("e => getComputedStyle(e).overflowX")
    assert overflow == "auto"
    if shot := os.environ.get("OMNIGATE_SCREENSHOT"):
        await say(page, "buttons")
        await expect(bot(page).last).to_have_text("Pick one")
        await page.screenshot(path=shot)


async def test_a_reload_shows_the_conversation_so_far(page: Any, script_stack: Stack) -> None:
    await open_chat(page, script_stack)
    await say(page, "echo: one")
    await expect(bot(page).last).to_have_text("echo: one")
    await say(page, "two")
    await expect(bot(page).last).to_have_text("second")
    before = await page.locator(".log > *").all_inner_texts()

    await page.reload()
    await page.get_by_role("button", name=f"Open chat: {TITLE}").click()
    await expect(bot(page).last).to_have_text("second")
    assert await page.locator(".log > *").all_inner_texts() == before
    await expect(mine(page)).to_have_text(["echo: one", "two"])
    # ... and the conversation goes on where it was.
    await say(page, "echo: three")
    await expect(bot(page).last).to_have_text("echo: three")


async def test_a_reply_in_flight_arrives_after_the_gateway_restarts(
    page: Any, script_stack: Stack
) -> None:
    await open_chat(page, script_stack)
    await say(page, "sleep: 3 late")
    await expect(page.locator(".typing")).to_be_visible()  # the turn is on a worker
    await asyncio.to_thread(script_stack.gateway.kill)
    await expect(page.locator("#omnigate-chat")).not_to_have_attribute("data-state", "online")
    await asyncio.to_thread(script_stack.start_gateway)
    await expect(page.locator("#omnigate-chat")).to_have_attribute(
        "data-state", "online", timeout=30_000
    )
    await expect(bot(page).last).to_have_text("late", timeout=30_000)
    await expect(bot(page).filter(has_text=re.compile("^late$"))).to_have_count(1)
    await say(page, "echo: after the restart")
    await expect(bot(page).last).to_have_text("echo: after the restart")


async def test_untrusted_text_runs_nothing_and_shows_as_text(
    page: Any, script_stack: Stack
) -> None:
    await open_chat(page, script_stack)
    script = "<script>window.__xss=1</script>"
    await say(page, script)
    await expect(bot(page).last).to_have_text(f"you said: {script}")
    await expect(mine(page).last).to_have_text(script)

    img = "<img src=x onerror=window.__xss=1>"
    await say(page, f"products: {img}")
    await expect(page.locator(".card .title").first).to_have_text(img)

    await say(page, "[click me](javascript:window.__xss=1) and [ok](https://shop.example/ok)")
    last = bot(page).last
    await expect(last).to_contain_text("[click me](javascript:window.__xss=1)")
    await expect(last.get_by_role("link")).to_have_count(1)
    await expect(last.get_by_role("link")).to_have_attribute("href", "https://shop.example/ok")

    await page.wait_for_timeout(300)  # give an injected handler every chance to run
    assert await page.evaluate("window.__xss") is None
    assert (
        await page.locator("#omnigate-chat").evaluate(
            "h => h.shadowRoot.querySelectorAll('script, img[onerror], [onerror]').length"
        )
        == 0
    )


async def test_the_widget_works_on_a_shops_own_site(page: Any, script_stack: Stack) -> None:
    """Embedded on another origin: CORS for the session, the socket, the data- attributes."""
    host_page = (
        "<!doctype html><html><head><style>div, button { display: none !important; }</style>"
        "</head><body><h1>Elsewhere</h1>"
        f'<script src="{script_stack.url}/web/widget.js" data-title="Ask us" '
        'data-position="left" data-color="rgb(200, 30, 30)" data-open="true"></script>'
        "</body></html>"
    )

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=host_page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    shop = BackgroundServer(app)  # another origin: same host, another port
    try:
        await page.goto(shop.url + "/")
        await _chat_from_afar(page, script_stack)
    finally:
        shop.stop()


async def _chat_from_afar(page: Any, script_stack: Stack) -> None:
    dialog = page.get_by_role("dialog", name="Ask us")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#omnigate-chat")).to_have_attribute("data-state", "online")
    await say(page, "echo: from afar")
    await expect(bot(page).last).to_have_text("echo: from afar")
    header = dialog.locator("header")
    assert await header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(200, 30, 30)"
    box = await page.locator(".og").bounding_box()
    assert box is not None and box["x"] < 100  # data-position="left"
    stored = await page.evaluate("Object.keys(localStorage)")
    assert stored == [f"omnigate:{script_stack.url}"]


async def test_the_shop_brain_answers_in_the_widget(page: Any, shop_stack: Stack) -> None:
    await open_chat(page, shop_stack)
    await say(page, "Hi, where is my order?")
    await expect(bot(page).last).to_contain_text(re.compile("order number", re.I), timeout=120_000)
