"""The one small protocol every channel implements, its two errors, and what the gateway hands
a channel (``ChannelHost``: the channel never imports the gateway).

Inbound, an adapter turns a platform event into ``channels.schema.Inbound`` (its own
``parse_*`` functions, called by the gateway route that verified the request). Outbound, the
gateway's delivery loop asks the adapter to render one reply as the platform messages that show
it (pure), then hands it one message at a time to send. Adapters translate and send one
message; dedupe, "already sent" marks, rate limits, retries, ordering, queueing and the storage
of long button payloads live in the gateway's delivery.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import redis.asyncio as aioredis

from channels.schema import ChannelName, Inbound, Outbound

Part = TypeVar("Part")


class RetryLater(Exception):
    """The platform asked us to slow down (e.g. HTTP 429) or was unreachable: try the same
    reply again after ``delay_s`` seconds. Nothing was delivered."""

    def __init__(self, delay_s: float, reason: str = "", hold: str | None = None) -> None:
        super().__init__(f"retry in {delay_s:.1f}s: {reason}")
        self.delay_s = delay_s
        self.reason = reason
        # The pace key (``Pace.key``) the platform's wait applies to: no replica sends on it
        # before the delay is over. None for a wait of this reply only (network errors).
        self.hold = hold


class DeliveryFailed(Exception):
    """The platform refused the reply for good (e.g. the chat no longer exists). Retrying
    would not help; the gateway logs it and moves on."""


class LivePublisher(Protocol):
    """The gateway's live fan-out, as a channel sees it: an event published for a conversation
    reaches whichever gateway replica holds that customer's open connection."""

    async def publish(self, conv: str, event: dict[str, Any]) -> None:
        """Send ``event`` to every listener of conversation ``conv`` on every replica."""
        ...


@dataclass(frozen=True)
class Pace:
    """At most ``per_s`` sends a second on ``key`` (e.g. ``chat:42``), across every replica."""

    key: str
    per_s: float


@dataclass(frozen=True)
class Preview:
    """A reply shown while it is generated: ``text`` is the checked text to append (one or
    more clauses that passed grounding), ``so_far`` everything checked so far. Best effort:
    a lost preview loses nothing, the final reply (``Outbound.streamed == reply_id``)
    carries the whole checked text and replaces it."""

    conversation: str
    meta: dict[str, str]
    reply_id: str
    text: str
    so_far: str
    turn: str = ""  # the Inbound.id answered: a turn taken again reuses its preview message


@dataclass(frozen=True)
class Rendered(Generic[Part]):
    """One reply as the platform messages that show it, in order, and the long button payloads
    (key → payload, ``channels.payloads``) to store before they are sent."""

    parts: tuple[Part, ...]
    stored: dict[str, str] = field(default_factory=dict)


class ChannelAdapter(Protocol[Part]):
    """What the gateway's delivery loop needs of a channel."""

    name: ChannelName

    def render(self, out: Outbound, index: int) -> Rendered[Part]:
        """``out.replies[index]`` (sequence number ``out.first_seq + index``) as platform
        messages. Pure: the same reply always renders the same."""
        ...

    def paces(
        self, conversation: str, *, typing: bool = False, preview: bool = False
    ) -> tuple[Pace, ...]:
        """The send rates one message (or, with ``typing``, one typing indicator; with
        ``preview``, one preview of a reply being generated, sent only when its slots are
        free now) to ``conversation`` takes a slot of."""
        ...

    async def send(self, out: Outbound, part: Part, number: int) -> None:
        """Send one message of a reply (``number``: its place in the reply) to
        ``out.conversation``. Raises ``RetryLater`` or ``DeliveryFailed``."""
        ...

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """Show that the bot is working on a turn (best effort; errors are ignored)."""
        ...

    # A later preview of a reply shows all earlier ones did (an edited message): delivery
    # may skip a preview when a newer one of the same reply waits. False: each preview
    # appends (the widget's delta frames), none is skipped.
    preview_replaces: bool

    async def preview(self, p: Preview, shown: str | None) -> str | None:
        """Show ``p``: a new message when ``shown`` is None, else an edit of the preview
        message ``shown`` (a handle this method returned before). Returns the handle of
        the message to edit next (None: nothing to edit, e.g. the widget). Best effort:
        raises ``RetryLater`` or any error, and the preview is skipped."""
        ...

    async def replace(self, out: Outbound, part: Part, shown: str) -> None:
        """Send ``part``, the first message of reply 0 of ``out``, as an edit of its preview
        message ``shown``, so the checked reply replaces the preview instead of following it.
        Raises ``RetryLater`` or ``DeliveryFailed`` as ``send`` does."""
        ...

    async def close(self) -> None:
        """Release the adapter's clients."""
        ...


class Ingress(Protocol):
    """The gateway's ingress, as a channel sees it: where an ``Inbound`` is handed in."""

    async def submit(self, inbound: Inbound, address: str | None = None) -> bool:
        """Store ``inbound`` for a turn; False when the platform already sent it. Raises
        ``channels.errors.Unavailable`` or ``channels.errors.TooMany``."""
        ...


class LiveFanout(LivePublisher, Protocol):
    """The live fan-out with its listening side (a waiting ``/api/chat`` request, an open web
    widget)."""

    def listen(self, conv: str) -> AbstractAsyncContextManager[asyncio.Queue[dict[str, Any]]]:
        """A queue of the events published to ``conv`` while the context is open."""
        ...


@dataclass
class ChannelHost:
    """What the gateway hands every channel when it mounts it (``gateway.app``): its Redis
    client, its ingress, the live fan-out, and the adapters delivery sends through, where a
    channel adds its own. A channel's settings come apart, as its own config dataclass."""

    redis: aioredis.Redis
    ingress: Ingress
    live: LiveFanout
    adapters: dict[ChannelName, ChannelAdapter[Any]] = field(default_factory=dict)
