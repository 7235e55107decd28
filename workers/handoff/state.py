"""The handoff state machine: which turns the bot answers, which go to an agent.

A conversation is in state ``bot`` or ``with_agent`` (``brain.types.Session.state``), with the
record of its last handoff in ``Session.handoff``. Everything below runs inside a turn, under
the conversation's lock, so the state changes in the order the messages came:

- the brain hands off (a reply with ``handoff``) → ``after_brain`` opens a thread in the
  agents' Slack channel (an outgoing with meta ``handoff_for=<conv>``, ``opening="1"``; the
  Slack adapter keeps the thread's ts) and schedules the agent timeout (``timeout``);
- while with an agent the bot stays silent: ``route`` forwards the customer's messages to the
  thread (``opening=""``), and sends the agent's messages (inbound with ``author="agent"``,
  queued in the customer's own conversation) to the customer on their channel;
- the agent's "Return to bot" (payload ``K.RESOLVE_PAYLOAD``) gives the conversation back, and
  the web console's "Close" (``K.CLOSE_PAYLOAD``) ends it with a goodbye;
- the agent timeout (an inbound with ``author="system"``) tells the customer
  nobody is free and offers to leave an email; an email then closes the handoff.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from brain.types import Session
from channels import constants as K
from channels.handoff import Handoff, resolve_payload
from channels.inert import inert
from channels.schema import (
    Button,
    ChannelName,
    ConversationAddress,
    Inbound,
    Outbound,
    Reply,
    User,
)
from gateway.settings import Settings
from workers.memory import transcript_text

log = logging.getLogger(__name__)

TIMEOUT_EVENT = "handoff_timeout"
CONSOLE_USER = User(id="omnigate", name="omnigate")
TRANSCRIPT_LINES = 20
SUMMARY_CHARS = 500

BACK_WITH_BOT = "You're back with the shop's assistant. How can I help?"
CLOSED = (
    "Thank you for talking with us: this conversation is closed. If you need anything else, "
    "just write here and the shop's assistant will answer."
)
NOBODY_FREE = (
    "Sorry, nobody from our team is free right now. Leave your email address here and we'll "
    "write back to you as soon as we can."
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

Author = Literal["bot", "agent", "system"]
# Asks for the agent timeout of handoff ``id`` of conversation ``conv`` in ``countdown_s``.
ScheduleTimeout = Callable[[str, str, int], None]


def timeout_inbound(conv: str, handoff_id: str) -> Inbound:
    """The system message that tells conversation ``conv`` its agent timeout is up; its
    platform id makes a second delivery of the timeout task a duplicate."""
    address = ConversationAddress.parse(conv)
    return Inbound(
        channel=address.channel,
        platform_id=f"handoff-timeout:{handoff_id}",
        user=CONSOLE_USER,
        conversation=address.conversation,
        text="[no agent answered in time]",
        author="system",
        meta={"event": TIMEOUT_EVENT, "handoff": handoff_id},
    )


# --- routing ----------------------------------------------------------------------------------


def route(inbound: Inbound, session: Session, settings: Settings) -> list[Outbound] | None:
    """Turns the bot must not answer. ``None``: run the brain as usual."""
    if inbound.author == "agent":
        return _from_agent(inbound, session, settings)
    if inbound.author == "system":
        return _from_system(inbound, session, settings)
    if session.state != "with_agent":
        return None
    if not settings.agent_console:
        log.warning(
            "%s was with an agent but no agents' console is on; back to the bot",
            inbound.conversation_key,
        )
        session.state = "bot"
        return None
    h = session.handoff
    if h is None:  # an old session: state without the record
        h = session.handoff = Handoff(requested_at=datetime.now(UTC))
    # The agent's answers go where the customer last wrote (e.g. their Slack thread).
    h.customer = inbound.user
    h.customer_meta = dict(inbound.meta)
    conv = inbound.conversation_key
    who = inert(_name(inbound.user))
    said = transcript_text(inbound)
    if h.timed_out_at is not None and h.email is None and (m := EMAIL.search(said)):
        h.email = m.group(0)
        _close(session, "email")
        return [
            *_to_console(conv, f"**{who}:** {inert(said)}", settings),
            *_to_console(
                conv,
                f"{who} left {h.email} for a reply by email. The conversation "
                "is back with the bot.",
                settings,
            ),
            _to_customer(
                inbound,
                session,
                f"Thank you! We'll write to you at {h.email}. "
                "Meanwhile, the shop's assistant is here if you need anything else.",
                "system",
            ),
        ]
    return [*_to_console(conv, f"**{who}:** {inert(said)}", settings)]


def _from_agent(inbound: Inbound, session: Session, settings: Settings) -> list[Outbound]:
    """An agent's message or "Return to bot", queued in the customer's conversation."""
    conv = inbound.conversation_key
    agent = _name(inbound.user)
    h = session.handoff
    closing = inbound.payload == K.CLOSE_PAYLOAD
    if closing or (inbound.payload and inbound.payload.startswith(K.RESOLVE_PAYLOAD)):
        if session.state != "with_agent" or h is None:
            return [*_to_console(conv, "This conversation is already with the bot.", settings)]
        _close(session, agent)
        done = "closed the conversation" if closing else "returned the conversation to the bot"
        return [
            _to_customer(inbound, session, CLOSED if closing else BACK_WITH_BOT, "system"),
            *_to_console(conv, f"{agent} {done}.", settings),
        ]
    if session.state != "with_agent" or h is None:
        return [
            *_to_console(
                conv,
                "This conversation is back with the bot: your message was "
                "not sent to the customer.",
                settings,
            )
        ]
    if h.accepted_at is None:
        h.accepted_at = datetime.now(UTC)
        h.agent = agent
        h.agent_id = inbound.user.id
    h.thread = inbound.meta.get("agent_thread") or h.thread
    return [_to_customer(inbound, session, inbound.text, "agent")]


def _from_system(inbound: Inbound, session: Session, settings: Settings) -> list[Outbound]:
    """Notices from omnigate itself; the agent timeout is the one there is."""
    h = session.handoff
    if inbound.meta.get("event") != TIMEOUT_EVENT:
        log.warning("unknown system message in %s: %s", inbound.conversation_key, inbound.meta)
        return []
    if (
        session.state != "with_agent"
        or h is None
        or h.id != inbound.meta.get("handoff")
        or h.accepted_at is not None
        or h.timed_out_at is not None
    ):
        return []  # answered, closed, or a later handoff: nothing to do
    h.timed_out_at = datetime.now(UTC)
    minutes = max(1, round(settings.agent_timeout_s / 60))
    note = (
        f"No agent answered within {minutes} min; the customer was asked to leave an email. "
        "You can still answer here."
    )
    return [
        _to_customer(inbound, session, NOBODY_FREE, "system"),
        *_to_console(inbound.conversation_key, note, settings),
    ]


def _close(session: Session, by: str) -> None:
    session.state = "bot"
    session.failures = 0
    if session.handoff is not None:
        session.handoff.resolved_at = datetime.now(UTC)
        session.handoff.resolved_by = by


# --- opening a handoff -------------------------------------------------------------------------


def after_brain(
    inbound: Inbound,
    session: Session,
    replies: list[Reply],
    settings: Settings,
    schedule: ScheduleTimeout,
) -> list[Outbound]:
    """When the brain hands off, open a thread in the agents' console with the transcript and
    ``schedule`` the agent timeout."""
    if not any(r.handoff for r in replies) or session.state == "with_agent":
        return []
    if not settings.agent_console:
        # No agents' console configured: the brain's own handoff text (support email) stands.
        return []
    conv = inbound.conversation_key
    summary = _summary(session)
    h = Handoff(
        requested_at=datetime.now(UTC),
        reason=transcript_text(inbound)[:SUMMARY_CHARS],
        summary=summary,
        customer=inbound.user,
        customer_meta=dict(inbound.meta),
    )
    session.state = "with_agent"
    session.handoff = h
    try:
        schedule(conv, h.id, settings.agent_timeout_s)
    except Exception:  # the handoff stands without its timeout rather than fail the turn
        log.exception("could not schedule the agent timeout of %s", conv)
    # Everything the customer wrote or was told is shown inert: no live links for agents.
    who = inert(_name(inbound.user))
    transcript = "\n".join(
        f"{item.role}: {inert(item.text)}" for item in session.history[-TRANSCRIPT_LINES:]
    )
    text = (
        f"**Handoff** — {who} on {inbound.channel.value} (`{conv}`)\n"
        f"**Reason:** {inert(h.reason) or '-'}\n**Summary:** {inert(summary) or '-'}\n\n"
        f"**Transcript:**\n{transcript or '-'}\n\n"
        'Reply in this thread to answer the customer; "Return to bot" (or '
        f"`/omnigate resolve {conv}`) gives the conversation back."
    )
    return [*_to_console(conv, text, settings, opening=True)]


def _summary(session: Session) -> str:
    """The brain's summary (``slots["handoff_summary"]``) or what the customer said last, and
    what the dialogue knows (order, email…)."""
    given = session.slots.get("handoff_summary")
    if isinstance(given, str) and given.strip():
        return given.strip()[:SUMMARY_CHARS]
    said = "; ".join(h.text for h in session.history[-6:] if h.role == "user")
    known = ", ".join(
        f"{k}={v}"
        for k, v in session.slots.items()
        if isinstance(v, str | int | float) and not isinstance(v, bool) and k != "turns"
    )
    return (said + (f" (known: {known})" if known else ""))[:SUMMARY_CHARS]


# --- outgoing ----------------------------------------------------------------------------------


def _to_console(
    conv: str, text: str, settings: Settings, *, opening: bool = False
) -> list[Outbound]:
    """A message for the agents' Slack channel, in the thread of conversation ``conv`` (none
    without one: the web console reads the session's transcript instead)."""
    if not settings.agent_channel:
        return []
    buttons = (Button(title="Return to bot", payload=resolve_payload(conv)),) if opening else ()
    return [
        Outbound(
            channel=ChannelName.slack,
            conversation=settings.agent_channel,
            user=CONSOLE_USER,
            replies=(Reply(text=text, buttons=buttons),),
            meta={"handoff_for": conv, "opening": "1" if opening else ""},
            author="system",
        )
    ]


def _to_customer(inbound: Inbound, session: Session, text: str, author: Author) -> Outbound:
    """A message to the customer of ``inbound``'s conversation, where they last wrote."""
    h = session.handoff
    customer_side = inbound.author == "customer"
    meta: dict[str, Any] = dict(inbound.meta if customer_side or h is None else h.customer_meta)
    user = inbound.user if customer_side or h is None or h.customer is None else h.customer
    return Outbound(
        channel=inbound.channel,
        conversation=inbound.conversation,
        user=user,
        replies=(Reply(text=text),),
        meta=meta,
        in_reply_to=inbound.id,
        author=author,
    )


def _name(user: User) -> str:
    return user.name or user.id
