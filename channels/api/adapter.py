"""The plain HTTP channel's adapter: replies are published to the conversation's live channel,
where the waiting request (on whichever replica) collects them."""

from __future__ import annotations

from typing import Any

from channels.api.render import reply_event
from channels.base import LivePublisher, Pace, Preview, Rendered
from channels.schema import ChannelName, Outbound


class ApiAdapter:
    """Delivers replies to a waiting ``/api/chat`` request."""

    name = ChannelName.api
    preview_replaces = False

    def __init__(self, live: LivePublisher) -> None:
        self._live = live

    def render(self, out: Outbound, index: int) -> Rendered[dict[str, Any]]:
        """Reply ``index`` as the one event the waiting request collects."""
        return Rendered((reply_event(out, index),))

    def paces(
        self, conversation: str, *, typing: bool = False, preview: bool = False
    ) -> tuple[Pace, ...]:
        """A waiting request takes replies as fast as they come."""
        return ()

    async def send(self, out: Outbound, part: dict[str, Any], number: int) -> None:
        """Publish one reply's event; the request waits until it has all of them."""
        await self._live.publish(out.conversation_key, part)

    async def typing(self, conversation: str, meta: dict[str, str]) -> None:
        """A blocking HTTP request has no typing indicator."""

    async def preview(self, p: Preview, shown: str | None) -> str | None:
        """A blocking HTTP request answers once, with the whole checked replies."""
        return None

    async def replace(self, out: Outbound, part: dict[str, Any], shown: str) -> None:
        """Never asked (``preview`` returns no handle); a plain send."""
        await self.send(out, part, 0)

    async def close(self) -> None:
        """Nothing to release."""
