"""Human handoff, as the worker sees it: which turns the bot answers, which go to an agent.

A conversation is in state ``bot`` or ``with_agent`` (``brain.types.Session.state``). While
it is with an agent the bot stays silent: the customer's messages are forwarded to the
agents' console, and the agent's messages (inbound with ``meta["role"] == "agent"``) go to the
customer on the channel they wrote on.
"""

from __future__ import annotations

from datetime import UTC, datetime

from brain.types import Handoff, Session
from channels.schema import Button, ChannelName, Inbound, Reply, User
from gateway.settings import Settings
from workers.outgoing import Outgoing

RESOLVE_PAYLOAD = "og:resolve"
CONSOLE_USER = User(id="omnigate", name="omnigate")


def _to_console(conv: str, text: str, settings: Settings, *, opening: bool) -> Outgoing:
    assert settings.agent_channel
    buttons = (
        (Button(title="Return to bot", payload=f"{RESOLVE_PAYLOAD}:{conv}"),) if opening else ()
    )
    return Outgoing(
        channel=ChannelName.slack,
        conversation=settings.agent_channel,
        user=CONSOLE_USER,
        replies=[Reply(text=text, buttons=buttons)],
        meta={"handoff_for": conv, "opening": "1" if opening else ""},
        author="system",
    )


def _customer(inbound: Inbound, text: str, author: str) -> Outgoing:
    return Outgoing(
        channel=inbound.channel,
        conversation=inbound.conversation,
        user=inbound.user,
        replies=[Reply(text=text)],
        meta=dict(inbound.meta),
        in_reply_to=inbound.id,
        author=author,
    )


def route(inbound: Inbound, session: Session, settings: Settings) -> list[Outgoing] | None:
    """Turns the bot must not answer. ``None``: run the brain as usual."""
    conv = inbound.conversation_key
    if inbound.meta.get("role") == "agent":
        if inbound.payload and inbound.payload.startswith(RESOLVE_PAYLOAD):
            session.state = "bot"
            session.handoff = None
            session.failures = 0
            return [
                _customer(
                    inbound, "You're back with the shop's assistant. How can I help?", "system"
                )
            ]
        if session.handoff and session.handoff.accepted_at is None:
            session.handoff.agent = inbound.user.name or inbound.user.id
            session.handoff.accepted_at = datetime.now(UTC)
        return [_customer(inbound, inbound.text, "agent")]
    if session.state == "with_agent" and settings.agent_channel:
        who = inbound.user.name or inbound.user.id
        return [_to_console(conv, f"*{who}:* {inbound.text}", settings, opening=False)]
    return None


def after_brain(
    inbound: Inbound, session: Session, replies: list[Reply], settings: Settings
) -> list[Outgoing]:
    """When the brain hands off, open a thread in the agents' console with the transcript."""
    if not any(r.handoff for r in replies) or session.state == "with_agent":
        return []
    if not settings.agent_channel:
        # No agents' console configured: the brain's own handoff text (support email) stands.
        return []
    now = datetime.now(UTC)
    summary = "; ".join(h.text for h in session.history[-6:] if h.role == "user")[:500]
    session.state = "with_agent"
    session.handoff = Handoff(requested_at=now, reason=inbound.text[:500], summary=summary)
    who = inbound.user.name or inbound.user.id
    transcript = "\n".join(f"{h.role}: {h.text}" for h in session.history[-20:])
    text = (
        f"*Handoff* — {who} on {inbound.channel.value} ({inbound.conversation_key})\n"
        f"*Reason:* {inbound.text}\n*Summary:* {summary or '-'}\n\n*Transcript:*\n{transcript}\n"
        "Reply in this thread to answer the customer."
    )
    return [_to_console(inbound.conversation_key, text, settings, opening=True)]
