"""The web chat channel: widget frames ↔ schema, and the adapter that delivers replies.

Client frames (JSON text): ``{"type": "message", "id", "text", "payload"?}`` and
``{"type": "resume", "after": int}``. Server frames: ``{"type": "reply", "seq", "reply"}``,
``{"type": "typing"}`` and ``{"type": "error", "error"}``.

Delivery never waits for the visitor: ``WebAdapter.send`` writes the reply frame to the
conversation's log (``og:weblog:<conv>``, a ZSET scored by seq) and publishes it live. Whichever
gateway replica holds the visitor's socket forwards it; a visitor who was away gets it from the
log when the widget sends ``resume``. The socket side lives in ``gateway.web``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from channels import constants as K
from channels.base import LivePublisher, Pace, Rendered
from channels.schema import ChannelName, ConversationAddress, Inbound, Outbound, Reply, User

LOG_KEEP = 200  # reply frames kept per conversation for resume and reload
MAX_ID_CHARS = 128
MAX_PAYLOAD_CHARS = 2048

TYPING: dict[str, Any] = {"type": "typing"}


class BadFrame(Exception):
    """A client frame the gateway cannot take; ``str()`` is the error sent back."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


@dataclass(frozen=True)
class MessageFrame:
    """The visitor wrote something or clicked a button."""

    id: str
    text: str
    payload: str | None = None


@dataclass(frozen=True)
class ResumeFrame:
    """Replay every logged reply with a seq above ``after``, then continue live."""

    after: int


ClientFrame = MessageFrame | ResumeFrame


def parse_frame(raw: str, max_text_chars: int) -> ClientFrame:
    """One client frame, checked; raises ``BadFrame`` saying what is wrong. Unknown keys are
    ignored, so an older gateway accepts a newer widget."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadFrame("frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadFrame("frame must be a JSON object")
    kind = data.get("type")
    if kind == "message":
        return _message(data, max_text_chars)
    if kind == "resume":
        after = data.get("after")
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise BadFrame("'after' is required: the last seq seen, an integer >= 0")
        return ResumeFrame(after=after)
    if kind is None:
        raise BadFrame("'type' is required: 'message' or 'resume'")
    raise BadFrame(f"unknown frame type {str(kind)[:40]!r}: expected 'message' or 'resume'")


def _message(data: dict[str, Any], max_text_chars: int) -> MessageFrame:
    mid, text, payload = data.get("id"), data.get("text"), data.get("payload")
    if not isinstance(mid, str) or not mid or len(mid) > MAX_ID_CHARS:
        raise BadFrame(f"'id' is required: a client message id of 1-{MAX_ID_CHARS} characters")
    if not isinstance(text, str):
        raise BadFrame("'text' is required: a string (may be empty when 'payload' is given)")
    if payload is not None and (not isinstance(payload, str) or len(payload) > MAX_PAYLOAD_CHARS):
        raise BadFrame(f"'payload' must be a string of at most {MAX_PAYLOAD_CHARS} characters")
    if not text.strip() and not payload:
        raise BadFrame("'text' is empty and there is no 'payload'")
    if len(text) > max_text_chars:
        raise BadFrame(f"'text' is longer than {max_text_chars} characters")
    return MessageFrame(id=mid, text=text, payload=payload or None)


def to_inbound(session_id: str, frame: MessageFrame) -> Inbound:
    """A message frame of visitor ``session_id`` → an inbound message. The platform id joins
    the session and the client id, so ingress dedupes a re-sent frame of this visitor only."""
    return Inbound(
        channel=ChannelName.web,
        platform_id=f"{session_id}:{frame.id}",
        user=User(id=session_id),
        conversation=session_id,
        text=frame.text,
        payload=frame.payload,
    )


def conversation_key(session_id: str) -> str:
    """The conversation key of a visitor: ``web:<session_id>``."""
    return ConversationAddress(ChannelName.web, session_id).key()


def reply_frame(seq: int, reply: Reply) -> dict[str, Any]:
    """The server frame of one reply."""
    return {"type": "reply", "seq": seq, "reply": reply.model_dump(mode="json")}


def error_frame(message: str) -> dict[str, Any]:
    """The server frame of an error."""
    return {"type": "error", "error": message}


class WebAdapter:
    """Logs each reply frame for resume, then publishes it to the visitor's live channel."""

    name = ChannelName.web

    def __init__(self, r: aioredis.Redis, live: LivePublisher, log_ttl_s: int) -> None:
        self._r = r
        self._live = live
        self._ttl = log_ttl_s

    def render(self, out: Outbound, index: int) -> Rendered[dict[str, Any]]:
        """Reply ``index`` as one reply frame."""
        return Rendered((reply_frame(out.first_seq + index, out.replies[index]),))

    def paces(self, conversation: str, *, typing: bool = False) -> tuple[Pace, ...]:
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
