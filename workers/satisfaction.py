"""The satisfaction question: "Did this solve your problem?", asked once when a conversation
ends (see ``gateway.records`` for when one ends), with two buttons on every channel.

It runs inside the turn, under the conversation lock: ``answer`` takes the customer's press of
a button (and the quiet-period notice) before the handoff router and the brain see it;
``ended`` tells the turn that it ended the conversation, which then adds the question (``ASK``,
or ``question_after`` as a message of its own). The quiet period is a due time per
conversation in Redis (``schedule_quiet``); when it is up, the workers' sweep queues a system
message into the conversation with the gateway's enqueue step (``queue_quiet_notices``), which
asks only when nothing happened in the conversation since it was scheduled.
"""

from __future__ import annotations

import json
import logging
import time

import redis

from brain.types import Session
from channels import constants as K
from channels.schema import Button, ConversationAddress, Inbound, Outbound, Reply, User
from gateway import records
from gateway.enqueue import enqueue
from gateway.settings import Settings
from workers.celery_app import app

log = logging.getLogger(__name__)

QUESTION = "Did this solve your problem?"
YES = K.CSAT_PAYLOAD + ":yes"
NO = K.CSAT_PAYLOAD + ":no"
BUTTONS = (Button(title="Yes", payload=YES), Button(title="No", payload=NO))
ASK = Reply(text=QUESTION, buttons=BUTTONS)
THANKS = "Thank you for telling us!"
SORRY = "Thank you for telling us, and sorry. Write here any time and we'll try again."
QUIET_EVENT = "conversation_quiet"
# The customer closing the conversation in words: the brain's intents for it.
CLOSING_INTENTS = frozenset({"thanks", "goodbye"})


def is_answer(inbound: Inbound) -> bool:
    """A press of the satisfaction question's buttons."""
    return inbound.payload in (YES, NO)


def is_quiet_notice(inbound: Inbound) -> bool:
    """The quiet-period notice (a system message queued by ``conversation_quiet``)."""
    return inbound.author == "system" and inbound.meta.get("event") == QUIET_EVENT


def answer(r: redis.Redis, inbound: Inbound, session: Session) -> list[Outbound] | None:
    """The turn of a satisfaction answer or a quiet-period notice; None for any other
    message (the handoff router and the brain take it)."""
    if is_answer(inbound):
        text = THANKS if inbound.payload == YES else SORRY
        return [_to_customer(inbound, inbound.user, dict(inbound.meta), Reply(text=text))]
    if not is_quiet_notice(inbound):
        return None
    record = records.current(r, inbound.conversation_key)
    meta = {k: v for k, v in inbound.meta.items() if k not in ("event", "record", "turns")}
    if (
        record is None
        or record.id != inbound.meta.get("record")
        or str(len(record.turns)) != inbound.meta.get("turns")
        or record.ended_at is not None
        or record.asked_at is not None
        or session.state == "with_agent"  # the handoff is not over yet
    ):
        return []  # something happened since: a later notice (or the next end) asks
    return [_to_customer(inbound, inbound.user, meta, ASK)]


def ended(r: redis.Redis, inbound: Inbound, session: Session) -> bool:
    """Whether this turn ended the conversation (its handoff resolved, or the customer thanked
    the bot or said goodbye) and the question was not asked yet."""
    if session.state == "with_agent":
        return False
    record = records.current(r, inbound.conversation_key)
    if record is None or record.ended_at is not None or record.asked_at is not None:
        return False  # (a first message that says "thanks" has nothing to be asked about)
    h = session.handoff
    known = record.handoff(h.id) if h is not None else None
    resolved_now = (
        h is not None and h.resolved_at is not None and (known is None or known.resolved_at is None)
    )
    closing = inbound.author == "customer" and session.last_intent in CLOSING_INTENTS
    return resolved_now or closing


def question_after(inbound: Inbound, session: Session) -> Outbound:
    """The question as a message of its own, to the customer where they last wrote (after an
    agent's "Return to bot", where the customer's own messages went)."""
    h = session.handoff
    if inbound.author == "customer" or h is None or h.customer is None:
        user, meta = inbound.user, dict(inbound.meta)
    else:
        user, meta = h.customer, dict(h.customer_meta)
    return _to_customer(inbound, user, meta, ASK)


def asks(outgoing: list[Outbound]) -> bool:
    """Whether these outgoing messages put the question."""
    return any(b.payload == YES for o in outgoing for reply in o.replies for b in reply.buttons)


def _to_customer(inbound: Inbound, user: User, meta: dict[str, str], reply: Reply) -> Outbound:
    return Outbound(
        channel=inbound.channel,
        conversation=inbound.conversation,
        user=user,
        replies=(reply,),
        meta=meta,
        in_reply_to=inbound.id,
        author="system",
    )


# --- the quiet period -----------------------------------------------------------------------


def schedule_quiet(
    r: redis.Redis,
    conv: str,
    record_id: str,
    turns: int,
    user: User,
    meta: dict[str, str],
    countdown_s: int,
) -> None:
    """Have the workers' sweep queue the quiet-period notice of ``conv`` in ``countdown_s``
    seconds, for conversation ``record_id`` as it stands now (``turns`` customer messages).
    A later turn's schedule replaces this one. (Two Redis writes, not a Celery task with a
    countdown per message: those were a tenth of a worker's time under load, and each sat
    in the worker's memory for the whole quiet period.)"""
    notice = json.dumps([record_id, turns, user.model_dump(mode="json"), meta])
    pipe = r.pipeline(transaction=True)
    pipe.hset(K.QUIET_ARGS, conv, notice)
    pipe.zadd(K.QUIET, {conv: time.time() + countdown_s})
    pipe.execute()


def queue_quiet_notices(r: redis.Redis, settings: Settings, limit: int = 200) -> int:
    """Queue the notice of every conversation whose quiet period is up (the workers' sweep);
    how many it queued. Sweeps of several workers may queue the same notice: its platform id
    makes the second a duplicate, which the enqueue step drops."""
    due: list[tuple[bytes, float]] = r.zrangebyscore(  # type: ignore[assignment]
        K.QUIET, "-inf", time.time(), start=0, num=limit, withscores=True
    )
    queued = 0
    for raw_conv, score in due:
        conv = raw_conv.decode()
        raw: bytes | None = r.hget(K.QUIET_ARGS, conv)  # type: ignore[assignment]
        if raw is not None:
            record_id, turns, user, meta = json.loads(raw)
            notice = quiet_inbound(conv, record_id, turns, User.model_validate(user), meta)
            queued += enqueue(r, app, notice, settings, limits=False)
        # Unless a turn scheduled it again meanwhile.
        r.eval(_UNSCHEDULE, 2, K.QUIET, K.QUIET_ARGS, conv, repr(score))
    return queued


_UNSCHEDULE = """
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1])) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 0
"""


def quiet_inbound(
    conv: str, record_id: str, turns: int, user: User, meta: dict[str, str]
) -> Inbound:
    """The system message that tells a conversation its quiet period is up; its platform id
    names the conversation's state, so a second one is a duplicate."""
    address = ConversationAddress.parse(conv)
    return Inbound(
        channel=address.channel,
        platform_id=f"quiet:{record_id}:{turns}",
        user=user,
        conversation=address.conversation,
        text="[the conversation went quiet]",
        author="system",
        meta={**meta, "event": QUIET_EVENT, "record": record_id, "turns": str(turns)},
    )
