"""Session memory in Redis: one JSON document per conversation under ``og:session:``, with a
bounded history and a TTL refreshed on every turn. This module owns that key's layout."""

from __future__ import annotations

import logging

import redis
from pydantic import ValidationError

from brain.types import HistoryItem, Session
from channels import constants as K
from channels.schema import Inbound

log = logging.getLogger(__name__)


def session_key(conv: str) -> str:
    """The Redis key of a conversation's memory."""
    return K.SESSION + conv


def load_session(r: redis.Redis, conv: str) -> Session:
    """The conversation's memory, or a fresh one (also when the stored one is unreadable)."""
    raw = r.get(session_key(conv))
    if raw is None:
        return Session()
    try:
        return Session.model_validate_json(raw)
    except ValidationError:
        # A schema change must not wedge a conversation: start it afresh and say so.
        log.warning("session of %s was unreadable; starting a fresh one", conv)
        return Session()


def remember(session: Session, item: HistoryItem, max_items: int) -> None:
    """Append to the transcript, keeping the last ``max_items`` lines."""
    session.history.append(item)
    if len(session.history) > max_items:
        del session.history[: len(session.history) - max_items]


def transcript_text(inbound: Inbound) -> str:
    """A message as one transcript line: its text, else the button pressed, else the kinds of
    what it carries."""
    if inbound.text:
        return inbound.text
    if inbound.payload:
        return f"[button] {inbound.payload}"
    kinds = ", ".join(a.kind for a in inbound.attachments)
    return f"[{kinds or 'empty message'}]"


def dump_session(session: Session) -> str:
    """The JSON stored in Redis."""
    return session.model_dump_json()
