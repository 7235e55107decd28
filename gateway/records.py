"""Conversation records: what ``omnigate stats`` and ``/admin`` count, one JSON record per
conversation, written by the worker after each committed turn (``workers.records``).

A conversation key (``channel:conversation``) holds many conversations over time: one starts
with a customer's message after the previous one ended, and ends when an agent (or the
customer's email) resolves its handoff, when the customer thanks the bot or says goodbye, or
after ``conversation_quiet_s`` without a message. Records keep no more of a person than their
session does, and less: times, intents, handoff times and reasons, button kinds, token counts,
the satisfaction answer, and the redacted words of only the questions the bot could not
answer. They expire after ``records_retention_days``; ``omnigate forget`` deletes them.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import redis
from pydantic import BaseModel, Field, ValidationError

from channels import constants as K


class TurnRecord(BaseModel):
    """One customer message and the bot's answer."""

    at: datetime  # the message arrived
    replied_at: datetime | None = None  # the reply was written for delivery
    intent: str | None = None  # what the brain took it for (``Session.last_intent``)
    unanswered: bool = False  # out of scope, a clarification, or a handoff after failures
    question: str | None = None  # the redacted words, for unanswered turns only
    click: str | None = None  # a recommendation button's kind (view, similar, also)
    tokens: int = 0  # LLM tokens generated for this turn


class HandoffRecord(BaseModel):
    """A handoff's times, from the session's ``Handoff`` record."""

    id: str
    requested_at: datetime
    reason: str = ""  # redacted
    after_failures: bool = False
    agent: str | None = None
    accepted_at: datetime | None = None
    timed_out_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None


class ConversationRecord(BaseModel):
    """One conversation, from the customer's first message to its end."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    conv: str
    channel: str
    started_at: datetime
    last_at: datetime
    turns: list[TurnRecord] = Field(default_factory=list)
    handoffs: list[HandoffRecord] = Field(default_factory=list)
    ended_at: datetime | None = None
    end: str | None = None  # "agent", "bot" or "quiet"
    asked_at: datetime | None = None  # the satisfaction question
    satisfied: bool | None = None  # its answer

    def handoff(self, handoff_id: str) -> HandoffRecord | None:
        """The recorded handoff with this id."""
        return next((h for h in self.handoffs if h.id == handoff_id), None)


def current(r: redis.Redis, conv: str) -> ConversationRecord | None:
    """The latest conversation of ``conv`` (open or ended), None when there is none."""
    raw = r.lindex(K.RECORDS + conv, -1)
    return _parse(raw) if raw is not None else None


def save(r: redis.Redis, record: ConversationRecord, *, new: bool, retention_s: int) -> None:
    """Store ``record`` as the latest conversation of its key (``new``: after the others),
    keep the key's last ``RECORDS_KEEP`` and forget records past the retention."""
    key = K.RECORDS + record.conv
    now = time.time()
    pipe = r.pipeline(transaction=True)
    if new:
        pipe.rpush(key, record.model_dump_json())
    else:
        pipe.lset(key, -1, record.model_dump_json())
    pipe.ltrim(key, -K.RECORDS_KEEP, -1)
    pipe.expire(key, retention_s)
    pipe.zadd(K.RECORDS_INDEX, {record.conv: now})
    pipe.zremrangebyscore(K.RECORDS_INDEX, "-inf", now - retention_s)
    pipe.execute()


def load_since(r: redis.Redis, since: datetime) -> list[ConversationRecord]:
    """Every recorded conversation active at or after ``since``, oldest first."""
    convs = r.zrangebyscore(K.RECORDS_INDEX, since.timestamp(), "+inf")
    out: list[ConversationRecord] = []
    for conv in convs:
        name = conv.decode() if isinstance(conv, bytes) else str(conv)
        for raw in r.lrange(K.RECORDS + name, 0, -1):
            record = _parse(raw)
            if record is not None and record.last_at >= since:
                out.append(record)
    return sorted(out, key=lambda c: c.started_at)


def forget(r: redis.Redis, convs: set[str]) -> int:
    """Delete the records of these conversation keys; the number of keys deleted."""
    if not convs:
        return 0
    pipe = r.pipeline(transaction=True)
    pipe.delete(*(K.RECORDS + c for c in convs))
    pipe.zrem(K.RECORDS_INDEX, *convs)
    return int(pipe.execute()[0])


def now() -> datetime:
    """The records' clock (aware UTC)."""
    return datetime.now(UTC)


def _parse(raw: bytes | str) -> ConversationRecord | None:
    try:
        return ConversationRecord.model_validate_json(raw)
    except ValidationError:
        return None  # a record from another version is skipped, not fatal
