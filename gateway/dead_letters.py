"""The dead-letter list: messages and replies omnigate gave up on, kept for a person to look at
instead of dropped. A message that kills or outlasts its worker ``turn_max_attempts`` times
(the customer gets an apology), a stored message nobody can read, a reply entry no replica can
deliver. ``omnigate dead-letters`` lists them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import redis

from channels import constants as K

KEEP = 10_000  # the newest entries kept; older ones are trimmed

Kind = Literal["message", "reply"]


def entry(kind: Kind, conversation: str, reason: str, raw: bytes | str) -> str:
    """One dead letter as stored: what it was, where from, why, and the bytes as they were."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return json.dumps(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "kind": kind,
            "conversation": conversation,
            "reason": reason,
            "raw": text,
        }
    )


def read(r: redis.Redis, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` dead letters, oldest first."""
    rows: Any = r.lrange(K.DEAD_LETTERS, -limit, -1)
    return [json.loads(row) for row in rows]


def describe(letter: dict[str, Any]) -> str:
    """One line for a person: when, what, where, why, and the start of the content."""
    raw = " ".join(str(letter.get("raw", "")).split())
    reason = " ".join(str(letter.get("reason", "?")).split())
    return (
        f"{letter.get('at', '?')}  {letter.get('kind', '?'):<7}  "
        f"{letter.get('conversation', '?')}  {reason[:160]}  {raw[:120]}"
    )
