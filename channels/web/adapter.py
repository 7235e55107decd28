"""The web chat adapter: delivery never waits for the visitor. ``WebAdapter.send`` writes the
reply frame to the conversation's log (``og:weblog:<conv>``, a ZSET scored by seq) and
publishes it live. Whichever gateway replica holds the visitor's socket forwards it
(``channels.web.connection``); a visitor who was away gets it from the log when the widget
sends ``resume``.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from channels import constants as K
from channels.base import LivePublisher, Pace, Preview, Rendered
from channels.schema import ChannelName, Outbound
from channels.web.render import TYPING, conversation_key, delta_frame, reply_frame

LOG_KEEP = 200  # reply frames kept per conversation for resume and reload


class WebAdapter:
    """Logs each reply frame for resume, then publishes it to the visitor's live channel."""

    name = ChannelName.web
    preview_replaces = False  # delta frames append

    def __init__(self, r: aioredis.Redis, live: LivePublisher, log_ttl_s: int) -> None:
        self._r = r
        self._live = live
        self._ttl = log_ttl_s

    def render(self, out: Outbound, index: int) -> Rendered[dict[str, Any]]:
        """Reply ``index`` as one reply frame (reply 0 of a streamed ``out`` names the
        preview it replaces)."""
        reply_id = out.streamed if index == 0 else None
        return Rendered((reply_frame(out.first_seq + index, out.replies[index], reply_id),))

    def paces(
        self, conversation: str, *, typing: bool = False, preview: bool = False
    ) -> tuple[Pace, ...]:
        """The widget takes replies as fast as they come."""
        return ()

    async def send(self, out: Outbound, part: dict[str, Any], number: int) -> None:
        """Log, then publish: a socket that replays the log after subscribing misses nothing.
        A re-send after a crash writes the identical member again (a no-op) and the widget
        drops the repeated seq."""
        frame, seq = part, int(part["seq"])
        key = K.WEB_LOG + out.conversation_key
        pipe = self._r.pipeline(transaction=True)
        pipe.zadd(key, {json.dumps(frame, sort_keys=True): seq})
        pipe.zremrangebyrank(key, 0, -LOG_KEEP - 1)
        pipe.expire(key, self._ttl)
        await pipe.execute()
        await self._live.publish(out.conversation_key, frame)

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """Show the typing indicator on the visitor's open widget, if any."""
        await self._live.publish(conversation_key(conversation), TYPING)

    async def preview(self, p: Preview, shown: str | None) -> str | None:
        """A delta frame to the visitor's open widget, if any: live only, never logged (the
        final reply frame is what a resume replays)."""
        await self._live.publish(conversation_key(p.conversation), delta_frame(p.reply_id, p.text))
        return None

    async def replace(self, out: Outbound, part: dict[str, Any], shown: str) -> None:
        """The widget replaces a preview by the reply frame's ``reply_id``: a plain send."""
        await self.send(out, part, 0)

    async def close(self) -> None:
        """Nothing of its own to release (Redis belongs to the gateway)."""


async def read_log(r: aioredis.Redis, session_id: str, after: int) -> list[dict[str, Any]]:
    """The logged reply frames of visitor ``session_id`` with a seq above ``after``, in order."""
    raw: Any = await r.zrangebyscore(K.WEB_LOG + conversation_key(session_id), f"({after}", "+inf")
    return [json.loads(m) for m in raw]


async def newest_seq(r: aioredis.Redis, session_id: str) -> int:
    """The seq of the newest logged reply frame of visitor ``session_id`` (0 when none)."""
    top: Any = await r.zrevrange(K.WEB_LOG + conversation_key(session_id), 0, 0, withscores=True)
    return int(top[0][1]) if top else 0
