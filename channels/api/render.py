"""A reply → the event a waiting ``/api/chat`` request collects. Pure."""

from __future__ import annotations

from typing import Any

from channels.schema import Outbound


def reply_event(out: Outbound, index: int) -> dict[str, Any]:
    """Reply ``index`` of ``out`` as one live event: the request has all replies once it holds
    ``count`` events answering its message."""
    return {
        "in_reply_to": out.in_reply_to,
        "index": index,
        "count": len(out.replies),
        "seq": out.first_seq + index,
        "author": out.author,
        "reply": out.replies[index].model_dump(mode="json"),
    }
