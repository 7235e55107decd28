"""``omnigate chat``: talk to a running gateway from the terminal through ``POST /api/chat``."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import aiohttp


def render(reply: dict[str, Any]) -> list[str]:
    """A reply as terminal lines; buttons are numbered so the user can pick one."""
    lines = [f"bot> {reply['text']}"] if reply.get("text") else []
    for p in reply.get("products", []):
        lines.append(f"      * {p['title']} — {p['price']:.2f} {p['currency']} [{p['sku']}]")
    for i, b in enumerate(reply.get("buttons", []), 1):
        lines.append(f"      [{i}] {b['title']}")
    if reply.get("handoff"):
        lines.append("      (handed over to a human agent)")
    return lines


async def _loop(url: str, user: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    buttons: list[dict[str, str]] = []
    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        print(f"omnigate chat — {url} as {user}. Ctrl-D to quit; a number picks a button.")
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                return 0
            body: dict[str, str] = {"user": user, "text": line}
            if line.strip().isdigit() and 0 < int(line) <= len(buttons):
                picked = buttons[int(line) - 1]
                body = {"user": user, "text": picked["title"], "payload": picked["payload"]}
            elif not line.strip():
                continue
            try:
                async with http.post(f"{url.rstrip('/')}/api/chat", json=body) as resp:
                    data = await resp.json(content_type=None)
            except aiohttp.ClientError as exc:
                print(f"error: cannot reach {url}: {exc}", file=sys.stderr)
                continue
            if resp.status != 200:
                print(f"error {resp.status}: {data.get('error')}", file=sys.stderr)
                continue
            buttons = []
            for reply in data["replies"]:
                print("\n".join(render(reply)))
                buttons.extend(reply.get("buttons", []))


def chat_loop(url: str, user: str | None, token: str | None) -> int:
    """Run the interactive chat until end of input."""
    return asyncio.run(_loop(url, user or f"cli-{uuid.uuid4().hex[:8]}", token))
