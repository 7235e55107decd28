"""Button payloads too long for a platform's button, stored once for every channel.

A platform button carries a short value: Telegram's ``callback_data`` holds 64 bytes, a Slack
button value 2000 characters. A longer payload (or one that starts with the mark) goes out as
``~`` + a digest of the payload, and the payload is kept under ``og:button-payload:<digest>``.
The renderers (pure) list the payloads to keep (``channels.base.Rendered.stored``), the gateway's
delivery stores them before the message is sent, and a channel's inbound path reads a pressed
button's value back with ``resolve``.
"""

from __future__ import annotations

import base64
import hashlib

import redis.asyncio as aioredis

from channels import constants as K

MARK = "~"  # a button value "~<key>": the payload is stored under BUTTON_PAYLOAD + key
TTL_S = 30 * 24 * 3600  # a long payload outlives its message by this long


def button_value(payload: str, limit_bytes: int) -> tuple[str, bool]:
    """The value a button carries for ``payload``, and whether the payload must be stored.

    Payloads over ``limit_bytes`` (or that start with the mark) become ``~`` + a digest of the
    payload: the same payload always gets the same key, so re-rendering a reply is harmless.
    """
    if len(payload.encode()) <= limit_bytes and not payload.startswith(MARK):
        return payload, False
    digest = hashlib.sha256(payload.encode()).digest()[:18]
    return MARK + base64.urlsafe_b64encode(digest).decode(), True


def stored_key(value: str) -> str | None:
    """The storage key of a stored payload's button value, or None for a plain value."""
    return value[len(MARK) :] if value.startswith(MARK) else None


async def store(r: aioredis.Redis, stored: dict[str, str]) -> None:
    """Keep the long payloads ``stored`` (key → payload) for ``TTL_S``."""
    if not stored:
        return
    pipe = r.pipeline(transaction=False)
    for key, payload in stored.items():
        pipe.set(K.BUTTON_PAYLOAD + key, payload, ex=TTL_S)
    await pipe.execute()


async def resolve(r: aioredis.Redis, value: str) -> str | None:
    """The payload a pressed button's ``value`` stands for: the value itself when plain, the
    stored payload, or None when that has expired."""
    key = stored_key(value)
    if key is None:
        return value
    stored = await r.get(K.BUTTON_PAYLOAD + key)
    if stored is None:
        return None
    return stored.decode() if isinstance(stored, bytes) else str(stored)
