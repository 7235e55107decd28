"""A reply streamed into the widget in headless Chromium: checked clauses arrive as delta
frames and grow a preview bubble, then the final reply frame (same ``reply_id``) replaces it
with the whole checked reply; a sentence with an invented tracking number never reaches the
page. Real gateway, workers, delivery and widget; the scripted brain's ``stream:`` command is
the model (the one double) behind the brain's real grounding gate."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from playwright.async_api import expect

from tests.e2e.test_widget import bot, open_chat, say
from tests.support.script_brain import STREAM_GROUNDED
from tests.support.servers import Stack

pytestmark = pytest.mark.browser

# Every text a preview bubble showed, as it changed (a MutationObserver in the shadow root).
WATCH_PREVIEWS = """
() => {
  const root = document.querySelector('#omnigate-chat').shadowRoot;
  window.__previews = [];
  new MutationObserver(() => {
    root.querySelectorAll('.msg.bot.streaming').forEach(b => {
      const seen = window.__previews;
      if (seen[seen.length - 1] !== b.textContent) seen.push(b.textContent);
    });
  }).observe(root, {subtree: true, childList: true, characterData: true});
}
"""


def record_frames(page: Any) -> list[dict[str, Any]]:
    """The server frames the widget's socket receives, in order."""
    frames: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return frames


async def of_reply(
    frames: list[dict[str, Any]], text_in: str, wait_s: float = 10.0
) -> tuple[list[dict[str, Any]], Any]:
    """The delta frames before the reply frame whose text holds ``text_in``, and that frame,
    once the socket has it: the preview bubble may already show the whole text, and
    Playwright reports a frame a moment after the page has it."""
    deadline = time.monotonic() + wait_s
    while True:
        final = next(
            (f for f in frames if f["type"] == "reply" and text_in in f["reply"]["text"]), None
        )
        if final is not None:
            break
        assert time.monotonic() < deadline, f"no reply frame with {text_in!r} in {frames}"
        await asyncio.sleep(0.05)
    before = frames[: frames.index(final)]
    return [f for f in before if f["type"] == "delta"], final


async def test_deltas_grow_the_reply_then_the_checked_reply_replaces_them(
    page: Any, script_stack: Stack
) -> None:
    frames = record_frames(page)
    await open_chat(page, script_stack)
    await page.evaluate(WATCH_PREVIEWS)
    words = "Good news: order OG-10231 has shipped with DHL. It is on its way to you!"
    await say(page, f"stream: {words}")
    await expect(bot(page).last).to_have_text(words)
    deltas, final = await of_reply(frames, "It is on its way")
    assert [d["text"] for d in deltas] == [
        "Good news: order OG-10231 has shipped with DHL.",
        " It is on its way to you!",
    ]
    assert {d["reply_id"] for d in deltas} == {final["reply_id"]}
    assert final["reply"]["text"] == words
    previews = await page.evaluate("window.__previews")
    assert previews[0] == "Good news: order OG-10231 has shipped with DHL."
    # The preview is gone: one bubble holds the reply, and it is the final one.
    await expect(page.locator(".msg.bot.streaming")).to_have_count(0)
    await expect(bot(page).filter(has_text="It is on its way")).to_have_count(1)
    await expect(page.locator(".typing")).to_be_hidden()  # typing ends with the reply
    assert page.js_errors == []


async def test_an_invented_tracking_number_never_reaches_the_widget(
    page: Any, script_stack: Stack
) -> None:
    frames = record_frames(page)
    await open_chat(page, script_stack)
    await page.evaluate(WATCH_PREVIEWS)
    invented = "1Z999AA10123456784"
    await say(
        page,
        f"stream: Good news: order OG-10231 has shipped. Your tracking number is {invented}. "
        "It arrives tomorrow.",
    )
    # The grounded text replaces the stream.
    await expect(bot(page).last).to_have_text(STREAM_GROUNDED)
    deltas, final = await of_reply(frames, "JD01460894152528")
    assert [d["text"] for d in deltas] == ["Good news: order OG-10231 has shipped."]
    assert final["reply_id"] == deltas[0]["reply_id"]
    assert all(invented not in json.dumps(f) for f in frames)
    assert all(invented not in text for text in await page.evaluate("window.__previews"))
    # (the visitor's own message holds it: the command is the model's script)
    assert all(invented not in text for text in await bot(page).all_text_contents())
    await expect(page.locator(".msg.bot.streaming")).to_have_count(0)
