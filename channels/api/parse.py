"""A ``/api/chat`` body → ``Inbound``. Pure."""

from __future__ import annotations

from channels.schema import ChannelName, Inbound, User


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
