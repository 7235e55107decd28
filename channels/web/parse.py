"""Widget frames → ``Inbound``: the client frames of the web chat, checked. Pure functions.

Client frames (JSON text): ``{"type": "message", "id", "text", "payload"?}`` and
``{"type": "resume", "after": int}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from channels.schema import ChannelName, Inbound, User

MAX_ID_CHARS = 128
MAX_PAYLOAD_CHARS = 2048


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
