"""Time to the first visible token in the widget, against the time to the whole reply, in the
same run: headless Chromium on the demo page of the real shop stack (real brain, SmolLM2
behind the generation service, on this machine's CPU), small-talk turns the LLM rewords.

For each turn, in the page (``performance.now()``, a MutationObserver in the widget's shadow
root): t0 when the visitor's message bubble is drawn (the widget then sends the frame), the
first bot text drawn after it (a preview bubble fed by delta frames, or the reply itself when
nothing streamed), and the final reply's bubble. One conversation at a time, so the figures
are latency, not queueing.

Run: ``make bench`` (or ``pytest -m bench -s tests/bench/test_bench_stream.py``); one JSON line:
``{"bench": "stream_first_token", "first_visible_p50_ms", "whole_reply_p50_ms", ...}``.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import browser  # noqa: F401  (the Chromium fixture)
from tests.e2e.test_widget import open_chat, say
from tests.support.servers import Stack

pytestmark = [pytest.mark.bench, pytest.mark.browser, pytest.mark.timeout(1800)]

MESSAGES = ["hello", "thanks!", "hi there", "thank you so much", "good morning", "hey"]
TURNS = 12  # a fresh conversation every 3 turns, so the history stays short
PER_CONVERSATION = 3

# Times (performance.now()) of each visitor message, of the first bot text after it, and of
# the final reply after it.
OBSERVE = """
() => {
  const root = document.querySelector('#omnigate-chat').shadowRoot;
  const log = window.__turns = [];
  new MutationObserver(records => {
    const now = performance.now();
    for (const r of records) for (const n of r.addedNodes) {
      if (!(n instanceof Element)) continue;
      const turn = log[log.length - 1];
      if (n.matches('.msg.me')) log.push({sent: now, first: null, whole: null, streamed: false});
      else if (turn && n.matches('.wrap.streaming') && turn.first === null) {
        turn.first = now; turn.streamed = true;
      } else if (turn && n.matches('.wrap[data-seq]') && turn.whole === null) {
        turn.whole = now; if (turn.first === null) turn.first = now;
      }
    }
  }).observe(root, {subtree: true, childList: true});
}
"""


async def _conversation(page: Any, stack: Stack, messages: list[str]) -> list[dict[str, Any]]:
    await open_chat(page, stack)
    await page.evaluate(OBSERVE)
    for n, text in enumerate(messages, start=1):
        await say(page, text)
        await page.wait_for_function(
            f"window.__turns.length >= {n} && window.__turns[{n - 1}].whole !== null",
            timeout=120_000,
        )
        await expect(page.locator(".wrap.streaming")).to_have_count(0)
    return list(await page.evaluate("window.__turns"))


async def test_time_to_first_visible_token(browser: Any, shop_stack: Stack) -> None:  # noqa: F811
    turns: list[dict[str, Any]] = []
    await _warm(browser, shop_stack)
    for start in range(0, TURNS, PER_CONVERSATION):
        messages = [MESSAGES[(start + i) % len(MESSAGES)] for i in range(PER_CONVERSATION)]
        context = await browser.new_context()
        try:
            pg = await context.new_page()
            turns += await _conversation(pg, shop_stack, messages)
        finally:
            await context.close()
    first = [t["first"] - t["sent"] for t in turns]
    whole = [t["whole"] - t["sent"] for t in turns]
    streamed = [t for t in turns if t["streamed"]]
    print(
        json.dumps(
            {
                "bench": "stream_first_token",
                "first_visible_p50_ms": round(statistics.median(first), 1),
                "whole_reply_p50_ms": round(statistics.median(whole), 1),
                "first_visible_streamed_p50_ms": (
                    round(statistics.median([t["first"] - t["sent"] for t in streamed]), 1)
                    if streamed
                    else None
                ),
                "streamed_turns": len(streamed),
                "turns": len(turns),
                "messages": MESSAGES,
            }
        )
    )


async def _warm(browser: Any, stack: Stack) -> None:  # noqa: F811
    """One turn first: the first generation pays for lazy set-up nobody waits for twice."""
    context = await browser.new_context()
    try:
        await _conversation(await context.new_page(), stack, ["hello"])
    finally:
        await context.close()
