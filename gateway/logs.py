"""Structured logs: one JSON object a line, carrying the conversation and the turn (the inbound
message id) that the line is about, with customer data redacted (``gateway.redact``).

The ids live in context variables (``channels.log_ids``, the lowest layer, so a channel's route
sets them too): set once where work on a message starts (ingress, the
turn task, the delivery of a reply) and read by the formatter, so every line logged on the way,
by omnigate or by a library, carries them. asyncio tasks copy the context they start in, so a
request's or a reply's ids stay with it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from channels.log_ids import CONVERSATION, TURN
from gateway.redact import redact


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
