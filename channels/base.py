"""The one small protocol every channel implements, and its two errors.

Inbound, an adapter turns a platform event into ``channels.schema.Inbound`` (its own
``parse_*`` functions, called by the gateway route that verified the request). Outbound, the
gateway's delivery loop hands it one reply at a time; the adapter renders it in the platform's
format and sends it. Adapters translate and send; dedupe, ordering, retries and queueing live in
the gateway.
"""

from __future__ import annotations

from typing import Any, Protocol

from channels.schema import ChannelName, Outbound


class RetryLater(Exception):
    """The platform asked us to slow down (e.g. HTTP 429) or was unreachable: try the same
    reply again after ``delay_s`` seconds. Nothing was delivered."""

    def __init__(self, delay_s: float, reason: str = "") -> None:
        super().__init__(f"retry in {delay_s:.1f}s: {reason}")
        self.delay_s = delay_s
        self.reason = reason


class DeliveryFailed(Exception):
    """The platform refused the reply for good (e.g. the chat no longer exists). Retrying
    would not help; the gateway logs it and moves on."""


class LivePublisher(Protocol):
    """The gateway's live fan-out, as a channel sees it: an event published for a conversation
    reaches whichever gateway replica holds that customer's open connection."""

    async def publish(self, conv: str, event: dict[str, Any]) -> None:
        """Send ``event`` to every listener of conversation ``conv`` on every replica."""
        ...


class ChannelAdapter(Protocol):
    """What the gateway's delivery loop needs of a channel."""

    name: ChannelName

    async def send(self, out: Outbound, index: int) -> None:
        """Render ``out.replies[index]`` (sequence number ``out.first_seq + index``) and send it
        to ``out.conversation``. Raises ``RetryLater`` or ``DeliveryFailed``."""
        ...

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """Show that the bot is working on a turn (best effort; errors are ignored)."""
        ...

    async def close(self) -> None:
        """Release the adapter's clients."""
        ...
