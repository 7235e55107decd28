"""The plain HTTP channel (``POST /api/chat``, ``omnigate chat``): replies are published to the
conversation's live channel, where the waiting request (on whichever replica) collects them."""

from __future__ import annotations

from typing import Any

from channels.base import LivePublisher, Pace, Rendered
from channels.schema import ChannelName, Inbound, Outbound, User


def parse(user: str, text: str, payload: str | None, message_id: str | None) -> Inbound:
    """A ``/api/chat`` body → an inbound message; the conversation is the user's."""
    kwargs = {"id": message_id} if message_id else {}
    inbound = Inbound(
        channel=ChannelName.api,
        platform_id=message_id or "pending",
        user=User(id=user),
        conversation=user,
        text=text,
        payload=payload,
        **kwargs,
    )
    # Without a client id every request is a new message: the platform id is our own id.
    return inbound if message_id else inbound.model_copy(update={"platform_id": inbound.id})


class ApiAdapter:
    """Delivers replies to a waiting ``/api/chat`` request."""

    name = ChannelName.api

    def __init__(self, live: LivePublisher) -> None:
        self._live = live

    def render(self, out: Outbound, index: int) -> Rendered[dict[str, Any]]:
        """Reply ``index`` as the one event the waiting request collects."""
        event = {
            "in_reply_to": out.in_reply_to,
            "index": index,
            "count": len(out.replies),
            "seq": out.first_seq + index,
            "author": out.author,
            "reply": out.replies[index].model_dump(mode="json"),
        }
        return Rendered((event,))

    def paces(self, conversation: str, *, typing: bool = False) -> tuple[Pace, ...]:
        """A waiting request takes replies as fast as they come."""
        return ()

    async def send(self, out: Outbound, part: dict[str, Any], number: int) -> None:
        """Publish one reply's event; the request waits until it has all of them."""
        await self._live.publish(out.conversation_key, part)

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """A blocking HTTP request has no typing indicator."""

    async def close(self) -> None:
        """Nothing to release."""
