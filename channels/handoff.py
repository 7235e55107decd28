"""Human handoff, the part every layer shares: the record of a handoff, the agents' messages
and "Return to bot" as inbound messages, and the agents' console bookkeeping in Redis (which
console thread belongs to which conversation, which conversations are with an agent now).

Handoff is one feature in a few modules, by the process it runs in, each at the lowest layer
that can hold it (see ARCHITECTURE.md): this module (imported by the brain's session, the
console and the worker alike), ``channels.slack.console`` (the agents' console: it runs in the
gateway, beside the Slack adapter) and ``workers.handoff`` (the state machine and the agent
timeout: they run inside the turn); the web agents' console, ``gateway.agents``, sends the
same agents' messages as the Slack one. Its Redis keys are under "handoff" in
``channels.constants``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from channels import constants as K
from channels.schema import ConversationAddress, Inbound, User


class Handoff(BaseModel):
    """Who took over a conversation, and when (``workers.handoff.state``). Kept after the
    conversation returns to the bot, as the record of the last handoff."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    requested_at: datetime
    reason: str = ""
    agent: str | None = None  # the agent's display name (or platform id)
    agent_id: str | None = None  # the agent's Slack user id, or web console account name
    accepted_at: datetime | None = None  # the agent's first reply
    thread: str | None = None  # the agents' console thread (Slack thread_ts)
    summary: str = ""
    # Where the customer's replies go: their user and the meta of their last message.
    customer: User | None = None
    customer_meta: dict[str, str] = Field(default_factory=dict)
    timed_out_at: datetime | None = None  # no agent answered within the agent timeout
    email: str | None = None  # left by the customer for a reply after a timeout
    resolved_at: datetime | None = None
    resolved_by: str | None = None  # an agent's name, or "email" (customer left an email)


# --- agents' messages ---------------------------------------------------------------------------


def resolve_payload(conv: str) -> str:
    """The "Return to bot" button's payload for conversation ``conv``."""
    return f"{K.RESOLVE_PAYLOAD}:{conv}"


def resolved_conversation(value: str) -> str | None:
    """The conversation a "Return to bot" button's payload names (None for another value)."""
    prefix = K.RESOLVE_PAYLOAD + ":"
    return value[len(prefix) :] if value.startswith(prefix) else None


def agent_inbound(
    conv: str,
    agent: User,
    platform_id: str,
    *,
    text: str = "",
    payload: str | None = None,
    thread: str | None = None,
    settled_as: str | None = None,
) -> Inbound:
    """An agent's message (or "Return to bot") for the customer of conversation ``conv``
    (``channel:conversation``, any channel): queued in that conversation, so it is handled in
    order with the customer's own messages; ``author == "agent"`` tells the worker.
    ``settled_as``: the intent the agent closes the conversation under (``workers.feedback``
    labels the messages the bot misread with it)."""
    address = ConversationAddress.parse(conv)
    meta = {"agent_user": agent.id}
    if thread:
        meta["agent_thread"] = thread
    if settled_as:
        meta["settled_as"] = settled_as
    return Inbound(
        channel=address.channel,
        platform_id=platform_id,
        user=agent,
        conversation=address.conversation,
        text=text,
        payload=payload,
        author="agent",
        meta=meta,
    )


# --- the console's bookkeeping ------------------------------------------------------------------


async def opened(r: aioredis.Redis, conv: str, thread: str, ttl_s: int) -> None:
    """The console thread ``thread`` now belongs to conversation ``conv``, with an agent."""
    pipe = r.pipeline(transaction=True)
    pipe.set(K.AGENT_THREAD + thread, conv, ex=ttl_s)
    pipe.set(K.AGENT_THREAD_OF + conv, thread, ex=ttl_s)
    pipe.sadd(K.HANDOFF_OPEN, conv)
    await pipe.execute()


async def thread_of(r: aioredis.Redis, conv: str) -> str | None:
    """The console thread of conversation ``conv`` (None before its first handoff)."""
    return _text(await r.get(K.AGENT_THREAD_OF + conv))


async def conversation_of(r: aioredis.Redis, thread: str) -> str | None:
    """The conversation whose handoff is console thread ``thread`` (None: not a handoff)."""
    return _text(await r.get(K.AGENT_THREAD + thread))


async def closed(r: aioredis.Redis, conv: str) -> None:
    """Conversation ``conv`` is no longer offered to ``/omnigate resolve``."""
    await r.srem(K.HANDOFF_OPEN, conv)


async def open_handoffs(r: aioredis.Redis) -> list[str]:
    """Conversations with an agent now (the set, pruned of those back with the bot)."""
    members = sorted(_text(m) or "" for m in await r.smembers(K.HANDOFF_OPEN))
    still = []
    for conv in members:
        raw = await r.get(K.SESSION + conv)
        try:
            state = json.loads(raw).get("state") if raw else None
        except ValueError:
            state = None
        if state == "with_agent":
            still.append(conv)
        else:
            await r.srem(K.HANDOFF_OPEN, conv)
    return still


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
