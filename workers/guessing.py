"""Guessing at the email gate, limited across conversations.

The order flows (``brain.flows.orders``) count a conversation's wrong order/email pairs in its
``email_failures`` slot and close the gate after ``MAX_EMAIL_FAILURES``. A new conversation
(a new web session, another ``/api/chat`` user, a fresh Slack DM) would start again at zero, so
the worker also counts the failures in Redis per email, per order and per client (the address a
web or ``/api/chat`` client came from; the platform identity on Telegram and Slack), for
``WINDOW_S``. A turn that names an email, an order or comes from a client over its limit runs
with its conversation's gate closed, so the brain answers as after too many misses (no order
details, a person offered), whatever the pair; the conversation's own count is put back after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from brain.flows.orders import MAX_EMAIL_FAILURES
from brain.types import Session
from channels import constants as K
from channels.schema import Inbound

WINDOW_S = 3600
# Failures allowed per window: an owner mistyping their email a few times stays below them.
LIMITS = {"email": 5, "order": 5, "client": 10}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


class Entities(Protocol):
    """What the brain finds in a text (``brain.nlu.Nlu`` has it)."""

    def order_ids(self, text: str) -> list[str]: ...


@dataclass
class Check:
    """One turn's guessing scopes, and whether the gate was closed for it."""

    scopes: list[str]
    failures_before: int
    closed: bool
    orders: set[str] = field(default_factory=set)


class GuessGuard:
    """The cross-conversation limits, kept in Redis (shared by every worker)."""

    def __init__(self, r: redis.Redis, entities: Entities | None) -> None:
        self._r = r
        self._entities = entities

    def before(self, inbound: Inbound, session: Session) -> Check:
        """Close the session's gate for this turn when a scope is over its limit."""
        slots: dict[str, Any] = session.slots
        orders = set(self._entities.order_ids(inbound.text)) if self._entities else set()
        if slots.get("order_id"):
            orders.add(str(slots["order_id"]))
        emails = {m.group(0).lower().rstrip(".") for m in _EMAIL.finditer(inbound.text)}
        client = inbound.meta.get("client") or f"{inbound.channel.value}:{inbound.user.id}"
        scopes = [f"email:{e}" for e in sorted(emails)] + [f"client:{client}"]
        failures = int(slots.get("email_failures", 0))
        named = scopes + [f"order:{o}" for o in sorted(orders)]
        counts = self._r.mget([K.GUESSES + s for s in named])
        closed = any(
            int(c or 0) >= LIMITS[s.split(":", 1)[0]] for s, c in zip(named, counts, strict=True)
        )
        if closed:
            slots["email_failures"] = MAX_EMAIL_FAILURES
        return Check(scopes, failures, closed, orders)

    def after(self, inbound: Inbound, session: Session, check: Check) -> None:
        """Count this turn's failure against every scope; reopen the conversation's own gate
        if only the shared limits closed it."""
        slots: dict[str, Any] = session.slots
        if check.closed:
            slots["email_failures"] = check.failures_before
            return
        if int(slots.get("email_failures", 0)) <= check.failures_before:
            return  # no wrong pair this turn (or a right one, which clears the count)
        orders = check.orders | ({str(slots["order_id"])} if slots.get("order_id") else set())
        pipe = self._r.pipeline(transaction=False)
        for scope in check.scopes + [f"order:{o}" for o in sorted(orders)]:
            pipe.incr(K.GUESSES + scope)
            pipe.expire(K.GUESSES + scope, WINDOW_S, nx=True)
        pipe.execute()
