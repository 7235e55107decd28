"""Feedback examples: customers' messages with the intent they meant, for ``omnigate learn``
(``brain.learning``). The worker writes them inside the turn (``workers.feedback``); this module
is their record in Redis, read by ``learn`` and erased by ``omnigate forget``.

An example is one customer message the bot answered: its words (redacted, as the records'
questions are), what the bot took it for, and where it came from. It is *labelled* when a
customer's pick on a "Did you mean…?" button or an agent settling the conversation says what it
meant, and *flagged* when the customer answered "No" to "Did this solve your problem?" (a
thumbs-down says the bot went wrong, not what was meant: a flagged example waits for a label,
and ``learn`` trains only on labelled ones). Examples are kept per conversation key and
expire with the conversation records (``records_retention_days``).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import redis
from pydantic import BaseModel, Field, ValidationError

from channels import constants as K


class Example(BaseModel):
    """One customer message, and what is known of the intent it meant."""

    id: str
    text: str  # the customer's words, redacted
    predicted: str | None = None  # what the bot took it for (``Session.last_intent``)
    # The bot could not answer it: out of scope, a clarifying question, or a failed turn.
    failed: bool = False
    record: str  # the conversation (``gateway.records.ConversationRecord.id``) it was said in
    at: datetime  # when the customer wrote it
    label: str | None = None  # the intent it meant, when a pick or an agent said so
    source: Literal["pick", "agent"] | None = None  # who gave the label
    flagged: bool = False  # the customer said the conversation did not solve their problem
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def example_id(record: str, at: datetime, text: str) -> str:
    """The id of the example of one message (the same when it is flagged, then labelled)."""
    return hashlib.sha256(f"{record}|{at.isoformat()}|{text}".encode()).hexdigest()[:16]


# --- the customer's latest messages ------------------------------------------------------------


def remember_turn(r: redis.Redis, conv: str, turn: Example, ttl_s: int) -> None:
    """Keep ``turn`` among the conversation's latest answered messages."""
    key = K.FEEDBACK_TURNS + conv
    pipe = r.pipeline(transaction=True)
    pipe.rpush(key, turn.model_dump_json())
    pipe.ltrim(key, -K.FEEDBACK_TURNS_KEEP, -1)
    pipe.expire(key, ttl_s)
    pipe.execute()


def recent_turns(r: redis.Redis, conv: str) -> list[Example]:
    """The conversation's latest answered messages, oldest first."""
    return [e for raw in r.lrange(K.FEEDBACK_TURNS + conv, 0, -1) if (e := _parse(raw))]


# --- examples ------------------------------------------------------------------------------------


def examples_of(r: redis.Redis, conv: str) -> dict[str, Example]:
    """The feedback examples of one conversation key, by id."""
    raw = r.hgetall(K.FEEDBACK + conv)
    return {e.id: e for v in raw.values() if (e := _parse(v))}


def save(r: redis.Redis, conv: str, examples: list[Example], retention_s: int) -> None:
    """Store (or update) ``examples`` of ``conv``; forget its examples past the retention."""
    if not examples:
        return
    now = time.time()
    cutoff = datetime.now(UTC) - timedelta(seconds=retention_s)
    key = K.FEEDBACK + conv
    stale = [i for i, e in examples_of(r, conv).items() if e.at < cutoff]
    pipe = r.pipeline(transaction=True)
    pipe.hset(key, mapping={e.id: e.model_dump_json() for e in examples})
    if stale:
        pipe.hdel(key, *stale)
    pipe.expire(key, retention_s)
    pipe.zadd(K.FEEDBACK_INDEX, {conv: now})
    pipe.zremrangebyscore(K.FEEDBACK_INDEX, "-inf", now - retention_s)
    pipe.execute()


def load_all(r: redis.Redis, retention_s: int) -> list[Example]:
    """Every feedback example within the retention, oldest first."""
    since = time.time() - retention_s
    cutoff = datetime.now(UTC) - timedelta(seconds=retention_s)
    out: list[Example] = []
    for conv in r.zrangebyscore(K.FEEDBACK_INDEX, since, "+inf"):
        name = conv.decode() if isinstance(conv, bytes) else str(conv)
        out += [e for e in examples_of(r, name).values() if e.at >= cutoff]
    return sorted(out, key=lambda e: (e.at, e.id))


def forget(r: redis.Redis, convs: set[str]) -> int:
    """Delete the feedback of these conversation keys; the number of keys deleted."""
    if not convs:
        return 0
    pipe = r.pipeline(transaction=True)
    pipe.delete(*(K.FEEDBACK + c for c in convs), *(K.FEEDBACK_TURNS + c for c in convs))
    pipe.zrem(K.FEEDBACK_INDEX, *convs)
    return int(pipe.execute()[0])


def _parse(raw: bytes | str) -> Example | None:
    try:
        return Example.model_validate_json(raw)
    except ValidationError:
        return None  # another version's: skipped
