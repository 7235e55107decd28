"""Which conversation and which turn a log line is about: two context variables, set where work
on a message starts (ingress, a channel's route, the turn task, the delivery of a reply) and read
by the gateway's log formatter (``gateway.logs``). asyncio tasks copy the context they start in,
so a request's or a reply's ids stay with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

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
