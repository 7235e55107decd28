"""What a committed turn adds to its conversation record (``gateway.records``) and to the
workers' counts for ``/metrics`` (``workers.metrics``), and the quiet-period check it
schedules. One call from the turn, after its commit: a turn that did not commit records
nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import redis

from brain.types import Brain, Session
from channels.schema import ChannelName, Inbound, Outbound
from gateway import records
from gateway.records import ConversationRecord, HandoffRecord, TurnRecord
from gateway.redact import redact
from gateway.settings import Settings
from workers import metrics, satisfaction

log = logging.getLogger(__name__)

UNANSWERED_INTENTS = frozenset({"out_of_scope", "clarification"})
CLICK_KINDS = frozenset({"view", "similar", "also"})
QUESTION_CHARS = 300


def tokens_generated(brain: Brain) -> int | None:
    """The LLM tokens the brain's model generated so far in this process (None when the brain
    has no local model that counts them). A turn's tokens are the difference over the turn:
    exact with one turn at a time per process (prefork), shared out by time with threads."""
    count = getattr(getattr(brain, "llm", None), "tokens_generated", None)
    return count if isinstance(count, int) else None


def tokens_used(before: int | None, after: int | None) -> int:
    """The tokens between two ``tokens_generated`` readings (0 when either is unknown)."""
    return after - before if before is not None and after is not None else 0


def after_commit(
    r: redis.Redis,
    inbound: Inbound,
    session: Session,
    outgoing: list[Outbound],
    tokens: int,
    seconds: float,
    settings: Settings,
) -> ConversationRecord | None:
    """Record the committed turn of ``inbound``: the conversation's record as saved (None when
    it could not be). Redis errors are logged, never raised (the customer has their answer
    already)."""
    record: ConversationRecord | None = None
    try:
        record, new = _record(r, inbound, session, outgoing, tokens)
        records.save(r, record, new=new, retention_s=settings.records_retention_days * 86400)
        opened = bool(record.handoffs) and record.handoffs[-1].requested_at >= inbound.received_at
        metrics.count_turn(r, inbound.channel.value, seconds, tokens, handoff=opened)
        if _quiet_applies(inbound, record, session):
            satisfaction.schedule_quiet(
                r,
                inbound.conversation_key,
                record.id,
                len(record.turns),
                inbound.user,
                dict(inbound.meta),
                settings.conversation_quiet_s,
            )
    except redis.RedisError:
        log.warning("could not record the turn of %s", inbound.conversation_key)
        return None
    return record


def _quiet_applies(inbound: Inbound, record: ConversationRecord, session: Session) -> bool:
    """Whether the quiet period may end this conversation: an open one, with the bot, on a
    channel that can speak first (``/api/chat`` answers only the request that waits)."""
    return (
        inbound.author == "customer"
        and inbound.channel is not ChannelName.api
        and record.ended_at is None
        and session.state == "bot"
    )


def _record(
    r: redis.Redis, inbound: Inbound, session: Session, outgoing: list[Outbound], tokens: int
) -> tuple[ConversationRecord, bool]:
    now = records.now()
    conv = inbound.conversation_key
    record = records.current(r, conv)
    new = False
    starts = inbound.author == "customer" and not satisfaction.is_answer(inbound)
    if record is None or (record.ended_at is not None and starts):
        record = ConversationRecord(
            conv=conv, channel=inbound.channel.value, started_at=inbound.received_at, last_at=now
        )
        new = True
    if inbound.author != "system":  # the quiet notice is no activity of the conversation
        record.last_at = now
    if satisfaction.is_answer(inbound):
        if record.asked_at is not None and record.satisfied is None:
            record.satisfied = inbound.payload == satisfaction.YES
        return record, new
    if starts:
        record.turns.append(_turn(inbound, session, outgoing, tokens, now))
        if any(reply.handoff for o in outgoing for reply in o.replies):
            _asked_for_person(record, inbound, session, now)
    elif record.turns:
        record.turns[-1].tokens += tokens
    resolved_now = _handoff(record, session)
    if satisfaction.asks(outgoing):
        record.asked_at = now
    if record.ended_at is None:
        if resolved_now:
            record.ended_at, record.end = now, "agent"
        elif satisfaction.is_quiet_notice(inbound) and record.asked_at is not None:
            record.ended_at, record.end = now, "quiet"
        elif starts and session.last_intent in satisfaction.CLOSING_INTENTS:
            record.ended_at, record.end = now, "bot"
    return record, new


def _turn(
    inbound: Inbound, session: Session, outgoing: list[Outbound], tokens: int, now: datetime
) -> TurnRecord:
    """A customer message: when it came, when it was answered, what it was taken for."""
    answered = any(o.conversation_key == inbound.conversation_key and o.replies for o in outgoing)
    handed = any(reply.handoff for o in outgoing for reply in o.replies)
    intent = session.last_intent
    unanswered = intent in UNANSWERED_INTENTS or (handed and session.failures > 0)
    kind = (inbound.payload or "").partition(":")[0]
    question = inbound.text.strip()[:QUESTION_CHARS] if unanswered and inbound.text else None
    return TurnRecord(
        at=inbound.received_at,
        replied_at=now if answered else None,
        intent=intent,
        unanswered=unanswered,
        question=redact(question) if question else None,
        click=kind if inbound.payload and kind in CLICK_KINDS else None,
        tokens=tokens,
    )


def _asked_for_person(
    record: ConversationRecord, inbound: Inbound, session: Session, now: datetime
) -> None:
    """The brain handed off in this turn: with an agents' console the session holds the new
    handoff; without one the brain's own answer (the support email) stands, counted alike."""
    h = session.handoff
    fresh = h is not None and h.requested_at >= inbound.received_at
    record.handoffs.append(
        HandoffRecord(
            id=h.id if fresh and h is not None else uuid.uuid4().hex[:16],
            requested_at=h.requested_at if fresh and h is not None else now,
            reason=redact(inbound.text.strip()[:QUESTION_CHARS] or (inbound.payload or "")),
            after_failures=session.failures > 0,
        )
    )


def _handoff(record: ConversationRecord, session: Session) -> bool:
    """Copy the session's handoff times into the record; True when it was resolved in this
    turn."""
    h = session.handoff
    known = record.handoff(h.id) if h is not None else None
    if h is None or known is None:
        return False
    resolved_now = known.resolved_at is None and h.resolved_at is not None
    known.agent = h.agent
    known.accepted_at = h.accepted_at
    known.timed_out_at = h.timed_out_at
    known.resolved_at = h.resolved_at
    known.resolved_by = h.resolved_by
    return resolved_now
