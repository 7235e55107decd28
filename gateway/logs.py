"""Structured logs: one JSON object a line, carrying the conversation and the turn (the inbound
message id) that the line is about, with customer data redacted (``gateway.redact``).

The ids live in context variables: set once where work on a message starts (ingress, the
turn task, the delivery of a reply) and read by the formatter, so every line logged on the way,
by omnigate or by a library, carries them. asyncio tasks copy the context they start in, so a
request's or a reply's ids stay with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from gateway.redact import redact

CONVERSATION: ContextVar[str | None] = ContextVar("conversation", default=None)
TURN: ContextVar[str | None] = ContextVar("turn", default=None)


def bind(conversation: str | None = None, turn: str | None = None) -> None:
    """Tag the lines logged from here on in this task or thread (until ``unbind``)."""
    if conversation is not None:
        CONVERSATION.set(conversation)
    if turn is not None:
        TURN.set(turn)


def unbind() -> None:
    """Forget the ids (a pool thread about to run someone else's task)."""
    CONVERSATION.set(None)
    TURN.set(None)


@contextlib.contextmanager
def bound(conversation: str | None = None, turn: str | None = None) -> Iterator[None]:
    """``bind`` for the duration of a block."""
    tokens = (CONVERSATION.set(conversation or CONVERSATION.get()), TURN.set(turn or TURN.get()))
    try:
        yield
    finally:
        CONVERSATION.reset(tokens[0])
        TURN.reset(tokens[1])


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: ``ts``, ``level``, ``logger``, ``conversation``, ``turn``,
    ``msg`` and, after an exception, ``exc``; message and traceback redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "conversation": CONVERSATION.get(),
            "turn": TURN.get(),
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's lines, as JSON, to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # library warnings as JSON lines too
