"""``Reply`` → the web chat's server frames. Pure functions.

Server frames (JSON text): ``{"type": "reply", "seq", "reply"}``, ``{"type": "typing"}`` and
``{"type": "error", "error"}``.
"""

from __future__ import annotations

from typing import Any

from channels.schema import ChannelName, ConversationAddress, Reply

TYPING: dict[str, Any] = {"type": "typing"}


def conversation_key(session_id: str) -> str:
    """The conversation key of a visitor: ``web:<session_id>``."""
    return ConversationAddress(ChannelName.web, session_id).key()


def reply_frame(seq: int, reply: Reply) -> dict[str, Any]:
    """The server frame of one reply."""
    return {"type": "reply", "seq": seq, "reply": reply.model_dump(mode="json")}


def error_frame(message: str) -> dict[str, Any]:
    """The server frame of an error."""
    return {"type": "error", "error": message}
