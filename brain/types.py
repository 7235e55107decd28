"""The one interface between the worker and the brain: ``Brain.respond(turn) -> replies``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from channels.handoff import Handoff
from channels.schema import Inbound, Reply


class HistoryItem(BaseModel):
    """One line of the conversation transcript."""

    role: Literal["user", "bot", "agent", "system"]
    text: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Session(BaseModel):
    """A conversation's memory, kept in Redis between turns (``workers.memory``).

    ``history`` holds the last N turns; ``slots`` what the dialogue has learned (the order
    being talked about, the verified email, the last products shown, ...).
    """

    history: list[HistoryItem] = Field(default_factory=list)
    slots: dict[str, Any] = Field(default_factory=dict)
    state: Literal["bot", "with_agent"] = "bot"
    handoff: Handoff | None = None
    failures: int = 0  # consecutive turns the bot could not help with
    # What the brain took the last customer message for (an intent name, "clarification",
    # "out_of_scope", a button's kind): the conversation records count it.
    last_intent: str | None = None


class Turn(BaseModel):
    """What the brain gets for one customer message. It may update ``session`` in place."""

    message: Inbound
    session: Session


class Brain(Protocol):
    """A turn in, replies out. Implementations load their models once, in ``__init__``."""

    def respond(self, turn: Turn) -> list[Reply]:
        """Answer one customer message; may update ``turn.session`` (slots, failures)."""
        ...
