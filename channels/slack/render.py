"""``Reply`` → Slack Block Kit messages. Pure functions: no I/O, no Redis, no client.

``render_reply`` turns a ``Reply`` into one or more Slack messages within Block Kit's limits
(50 blocks a message, 3000 characters a section, 25 buttons an actions block, 2000 characters a
button value; a longer payload is stored, ``channels.payloads``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from channels import payloads
from channels.base import Rendered
from channels.schema import Product, Reply
from channels.slack.parse import ACTION_PREFIX

MAX_BLOCKS = 50  # blocks in one message
SECTION_TEXT_LIMIT = 3000  # characters of a section's text
ACTIONS_LIMIT = 25  # elements in one actions block
BUTTON_TEXT_LIMIT = 75  # characters of a button's label
BUTTON_VALUE_LIMIT = 2000  # characters of a button's value
FALLBACK_TEXT_LIMIT = 3000  # the notification text of a message with blocks
NO_TEXT = "Choose an option:"


# --- outbound ---------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters (its own escaping, not HTML's)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MD_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https?://|mailto:)[^\s)]+)\)")
_MD_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.S)


def to_mrkdwn(markdown: str) -> str:
    """Our markdown subset as Slack mrkdwn: ``**b**`` → ``*b*``, ``[t](url)`` → ``<url|t>``;
    ``_i_``, `` `c` `` and line breaks stay; ``& < >`` escaped."""
    out = escape(markdown)

    def link(m: re.Match[str]) -> str:
        label = m.group(1).replace("|", "¦")
        return f"<{m.group(2)}|{label}>"

    out = _MD_LINK.sub(link, out)
    return _MD_BOLD.sub(r"*\1*", out)


@dataclass(frozen=True)
class SlackMessage:
    """One ``chat.postMessage``: the notification ``text`` and the ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]


def render_reply(reply: Reply) -> Rendered[SlackMessage]:
    """``reply`` → Slack messages within Block Kit's limits: the text in sections of at most
    3000 characters, a section per product (its image as accessory), buttons in actions
    blocks of at most 25; then at most 50 blocks a message."""
    sections = split_mrkdwn(to_mrkdwn(reply.text))
    blocks: list[dict[str, Any]] = [_section(chunk) for chunk in sections]
    blocks += [product_block(p) for p in reply.products]
    stored: dict[str, str] = {}
    buttons = []
    for i, b in enumerate(reply.buttons):
        value, long_payload = payloads.button_value(b.payload, BUTTON_VALUE_LIMIT)
        key = payloads.stored_key(value) if long_payload else None
        if key is not None:
            stored[key] = b.payload
        buttons.append(
            {
                "type": "button",
                "action_id": f"{ACTION_PREFIX}{i}",
                "text": {
                    "type": "plain_text",
                    "text": _clip(b.title, BUTTON_TEXT_LIMIT),
                    "emoji": True,
                },
                "value": value,
            }
        )
    for start in range(0, len(buttons), ACTIONS_LIMIT):
        blocks.append({"type": "actions", "elements": buttons[start : start + ACTIONS_LIMIT]})
    if not blocks:
        blocks = [_section(" ")]
    messages = tuple(
        SlackMessage(text=_fallback(reply, part), blocks=part)
        for part in (blocks[i : i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS))
    )
    return Rendered(messages, stored)


def product_block(p: Product) -> dict[str, Any]:
    """A product card: title (linked), price; the picture as the section's accessory."""
    title = escape(p.title).replace("|", "¦")
    head = f"*<{p.url}|{title}>*" if p.url else f"*{title}*"
    text = _clip(f"{head}\n{p.price:,.2f} {escape(p.currency)}", SECTION_TEXT_LIMIT)
    block: dict[str, Any] = {
        "type": "section",
        "block_id": f"product:{p.sku}"[:255],
        "text": {"type": "mrkdwn", "text": text},
    }
    if p.image_url:
        block["accessory"] = {
            "type": "image",
            "image_url": p.image_url,
            "alt_text": _clip(p.title, 2000) or p.sku,
        }
    return block


def split_mrkdwn(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """``text`` in chunks of at most ``limit`` characters, cut at a paragraph, a line or a
    space where there is one, and never inside a ``<link|label>``."""
    chunks = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_at(rest, limit)
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def _cut_at(text: str, limit: int) -> int:
    window = text[:limit]
    cut = -1
    for sep in ("\n\n", "\n", " "):
        pos = window.rfind(sep)
        if pos > limit // 2:
            cut = pos
            break
    if cut <= 0:
        cut = limit
    opened = text.rfind("<", 0, cut)
    if opened > text.rfind(">", 0, cut) and opened > 0:
        cut = opened  # don't cut a link in two
    return cut


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fallback(reply: Reply, blocks: list[dict[str, Any]]) -> str:
    """The text Slack shows in notifications (and where blocks cannot be shown)."""
    for b in blocks:
        if b["type"] == "section" and b["text"]["text"].strip() and "accessory" not in b:
            if not b.get("block_id", "").startswith("product:"):
                return _clip(b["text"]["text"], FALLBACK_TEXT_LIMIT)
    titles = [p.title for p in reply.products]
    if titles and any(b.get("block_id", "").startswith("product:") for b in blocks):
        return _clip(escape(", ".join(titles)), FALLBACK_TEXT_LIMIT)
    return NO_TEXT if reply.buttons else " "


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
