"""Conversations in shared Slack channels stay private: a customer who mentions the app in a
channel (or clicks one of its buttons there) is answered in a direct message with the app,
their own conversation, and the thread gets only a note saying so.

Why: a channel thread is read by everyone in the channel. Were it the conversation, the email
one person proved there would unlock their orders for anyone writing in the same thread, and
the order details would be shown to all of them.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from channels.errors import Unavailable
from channels.schema import Inbound
from channels.slack.parse import is_direct

log = logging.getLogger(__name__)

MOVED_TO_DM = "I've answered you in a direct message, so your details stay private."
MAX_CACHED = 10_000


class DirectMessages:
    """Each person's DM channel with the app (``conversations.open``), cached."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._dm: dict[str, str] = {}

    async def channel_of(self, user: str) -> str:
        """The DM channel id of ``user``; ``Unavailable`` when Slack cannot tell us now (the
        event is answered 503 and Slack sends it again)."""
        if user in self._dm:
            return self._dm[user]
        try:
            resp = await self._client.conversations_open(users=user)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"conversations.open for {user}: {exc}") from exc
        channel = (resp.get("channel") or {}).get("id")
        if not isinstance(channel, str) or not channel:
            raise Unavailable(f"conversations.open for {user} gave no channel")
        if len(self._dm) >= MAX_CACHED:
            self._dm.clear()
        self._dm[user] = channel
        return channel

    async def private(self, inbound: Inbound) -> Inbound:
        """``inbound`` as it would have come in the person's DM (itself when it did)."""
        channel = inbound.meta.get("channel") or inbound.conversation
        if is_direct(channel):
            return inbound
        dm = await self.channel_of(inbound.user.id)
        meta = {k: v for k, v in inbound.meta.items() if k not in ("channel", "thread_ts")}
        meta["channel"] = dm
        return inbound.model_copy(update={"conversation": dm, "meta": meta})

    async def leave_note(self, channel: str, thread: str | None) -> None:
        """Tell the channel thread where the answer went (best effort)."""
        try:
            await self._client.chat_postMessage(channel=channel, thread_ts=thread, text=MOVED_TO_DM)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not leave the moved-to-DM note in %s: %s", channel, exc)
