"""The one interface between the worker and the brain: ``Brain.respond(turn) -> replies``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from channels.schema import Inbound, Reply, User


class HistoryItem(BaseModel):
    """One line of the conversation transcript."""

    role: Literal["user", "bot", "agent", "system"]
    text: str
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Handoff(BaseModel):
    """Who took over a conversation, and when (``workers.handoff.state``). Kept after the
    conversation returns to the bot, as the record of the last handoff."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    requested_at: datetime
    reason: str = ""
    agent: str | None = None  # the agent's display name (or platform id)
    agent_id: str | None = None  # the agent's Slack user id
    accepted_at: datetime | None = None  # the agent's first reply
    thread: str | None = None  # the agents' console thread (Slack thread_ts)
    summary: str = ""
    # Where the customer's replies go: their user and the meta of their last message.
    customer: User | None = None
    customer_meta: dict[str, str] = Field(default_factory=dict)
    timed_out_at: datetime | None = None  # no agent answered within the agent timeout
    email: str | None = None  # left by the customer for a reply after a timeout
    resolved_at: datetime | None = None
    resolved_by: str | None = None  # an agent's name, or "email" (customer left an email)


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


class Turn(BaseModel):
    """What the brain gets for one customer message. It may update ``session`` in place."""

    message: Inbound
    session: Session


class Brain(Protocol):
    """A turn in, replies out. Implementations load their models once, in ``__init__``."""

    def respond(self, turn: Turn) -> list[Reply]:
        """Answer one customer message; may update ``turn.session`` (slots, failures)."""
        ...
