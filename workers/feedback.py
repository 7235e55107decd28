"""Recording feedback for ``omnigate learn``: one call from the turn, after its commit and
still under the conversation lock (``gateway.feedback`` holds the examples).

What becomes an example:

- **Every message the bot answers** is remembered for a while (the conversation's latest
  ``FEEDBACK_TURNS_KEEP``, as long as its memory), with what the bot took it for: it is not an
  example yet, only what the feedback below may point at.
- **A pick on a "Did you mean…?" button** (payload ``intent:NAME`` when the last message the
  bot answered got its clarifying question) labels the message that was unclear with NAME,
  flagged or not. A pick from the menu, or from a question asked about an earlier message,
  labels nothing.
- **A thumbs-down** is the customer's "No" to "Did this solve your problem?": every message of
  that conversation the bot answered (small talk aside) becomes a *flagged* example. It says
  the bot went wrong somewhere, not what was meant, so it waits for a label.
- **An agent settling a conversation under an intent** (the web console's "Close" with an
  intent chosen, or Slack's ``/omnigate resolve CONV INTENT``) labels the messages of that
  conversation the bot misread (those it could not answer: out of scope, a clarifying
  question, a failed turn) and the flagged examples of the same conversation key from the
  last ``FLAG_WINDOW_S`` (the customer came back about it), unless the bot had read them as
  that intent already. A label once given is kept.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis

from brain.intents import known_intents
from brain.types import Session
from channels import constants as K
from channels.schema import Inbound
from gateway import feedback
from gateway.feedback import Example
from gateway.records import ConversationRecord
from gateway.redact import redact
from gateway.settings import Settings
from workers import satisfaction

log = logging.getLogger(__name__)

PICK_PREFIX = "intent:"
CLARIFICATION = "clarification"
MISREAD_INTENTS = frozenset({"out_of_scope", CLARIFICATION})
# Answers a thumbs-down is hardly about.
SMALL_TALK = frozenset({"greeting", "thanks", "goodbye"})
# Flagged examples this recent are labelled by an agent's settling of the same conversation key.
FLAG_WINDOW_S = 24 * 3600
TEXT_CHARS = 300
# The meta key an agent's "Close" carries the intent in (``channels.handoff.agent_inbound``).
SETTLED_AS = "settled_as"


def after_commit(
    r: redis.Redis,
    inbound: Inbound,
    session: Session,
    record: ConversationRecord | None,
    settings: Settings,
) -> None:
    """Record what the committed turn of ``inbound`` says about the intent model; errors are
    logged, never raised (the customer has their answer already)."""
    if record is None:
        return
    try:
        if inbound.author == "customer":
            _from_customer(r, inbound, session, record, settings)
        elif inbound.author == "agent" and (intent := settled_as(inbound, session)):
            _settle(r, inbound.conversation_key, record, intent, settings)
    except redis.RedisError:
        log.warning("could not record the feedback of %s", inbound.conversation_key)
    except Exception:  # feedback must never cost the conversation its next turn
        log.exception("recording the feedback of %s failed", inbound.conversation_key)


def settled_as(inbound: Inbound, session: Session) -> str | None:
    """The intent an agent's message settled the conversation under: a "Close" (or "Return to
    bot") that ended the handoff in this turn, with a known intent chosen."""
    intent = inbound.meta.get(SETTLED_AS)
    payload = inbound.payload or ""
    finishing = payload == K.CLOSE_PAYLOAD or payload.startswith(K.RESOLVE_PAYLOAD)
    h = session.handoff
    if not intent or not finishing or h is None or h.resolved_at is None:
        return None
    if session.state != "bot" or h.resolved_at < inbound.received_at:
        return None  # it was with the bot already: nothing was settled now
    if intent not in known_intents():
        log.warning("an agent settled %s under an unknown intent", inbound.conversation_key)
        return None
    return intent


def _from_customer(
    r: redis.Redis,
    inbound: Inbound,
    session: Session,
    record: ConversationRecord,
    settings: Settings,
) -> None:
    conv = inbound.conversation_key
    retention_s = settings.records_retention_days * 86400
    payload = inbound.payload or ""
    if satisfaction.is_answer(inbound):
        if payload == satisfaction.NO and record.satisfied is False:
            _thumbs_down(r, conv, record, retention_s)
        return
    if payload.startswith(PICK_PREFIX):
        _pick(r, conv, payload.removeprefix(PICK_PREFIX), retention_s)
        return
    text = inbound.text.strip()
    if payload or not text or session.last_intent is None:
        return  # a button, an attachment, or a message for the agent
    words = redact(text[:TEXT_CHARS])
    turn = Example(
        id=feedback.example_id(record.id, inbound.received_at, words),
        text=words,
        predicted=session.last_intent,
        failed=session.last_intent in MISREAD_INTENTS or session.failures > 0,
        record=record.id,
        at=inbound.received_at,
    )
    feedback.remember_turn(r, conv, turn, settings.session_ttl_s)


def _pick(r: redis.Redis, conv: str, intent: str, keep: int) -> None:
    """A "Did you mean…?" pick: the message just before it, which the bot asked about."""
    turns = feedback.recent_turns(r, conv)
    if not turns or intent not in known_intents():
        return
    unclear = turns[-1]
    if unclear.predicted != CLARIFICATION:
        return  # a menu button, or the answer to an older question
    example = feedback.examples_of(r, conv).get(unclear.id) or unclear
    example.label, example.source = intent, "pick"
    example.updated_at = datetime.now(UTC)
    feedback.save(r, conv, [example], keep)


def _thumbs_down(r: redis.Redis, conv: str, record: ConversationRecord, keep: int) -> None:
    """ "No" to the satisfaction question: the conversation's answered messages are flagged."""
    known = feedback.examples_of(r, conv)
    flagged = []
    for turn in feedback.recent_turns(r, conv):
        if turn.record != record.id or turn.predicted in SMALL_TALK:
            continue
        example = known.get(turn.id) or turn
        example.flagged = True
        example.updated_at = datetime.now(UTC)
        flagged.append(example)
    feedback.save(r, conv, flagged, keep)


def _settle(
    r: redis.Redis, conv: str, record: ConversationRecord, intent: str, settings: Settings
) -> None:
    """An agent settled the conversation under ``intent``: its misread messages, and the
    recent flagged ones, are labelled."""
    known = feedback.examples_of(r, conv)
    since = datetime.now(UTC) - timedelta(seconds=FLAG_WINDOW_S)
    targets = {e.id: e for e in known.values() if e.flagged and e.at >= since}
    for turn in feedback.recent_turns(r, conv):
        if turn.record == record.id and turn.failed:
            targets.setdefault(turn.id, known.get(turn.id) or turn)
    labelled = []
    for example in targets.values():
        if example.label is not None or example.predicted == intent:
            continue
        example.label, example.source = intent, "agent"
        example.updated_at = datetime.now(UTC)
        labelled.append(example)
    feedback.save(r, conv, labelled, settings.records_retention_days * 86400)
