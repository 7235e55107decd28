"""``Reply`` → the web chat's server frames. Pure functions.

Server frames (JSON text): ``{"type": "reply", "seq", "reply"}`` (with ``"reply_id"`` when the
reply was streamed: it replaces the delta frames of that id), ``{"type": "delta", "reply_id",
"text"}`` (checked text to append while a reply is generated), ``{"type": "typing"}`` and
``{"type": "error", "error"}``.
"""

from __future__ import annotations

from typing import Any

from channels.schema import ChannelName, ConversationAddress, Reply

TYPING: dict[str, Any] = {"type": "typing"}


def conversation_key(session_id: str) -> str:
    """The conversation key of a visitor: ``web:<session_id>``."""
    return ConversationAddress(ChannelName.web, session_id).key()


def reply_frame(seq: int, reply: Reply, reply_id: str | None = None) -> dict[str, Any]:
    """The server frame of one reply; ``reply_id`` names the preview it replaces."""
    frame: dict[str, Any] = {"type": "reply", "seq": seq, "reply": reply.model_dump(mode="json")}
    if reply_id is not None:
        frame["reply_id"] = reply_id
    return frame


def delta_frame(reply_id: str, text: str) -> dict[str, Any]:
    """The server frame of checked text to append to the reply ``reply_id`` as it grows."""
    return {"type": "delta", "reply_id": reply_id, "text": text}


def error_frame(message: str) -> dict[str, Any]:
    """The server frame of an error."""
    return {"type": "error", "error": message}
