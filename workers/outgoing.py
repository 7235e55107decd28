"""Writing to the reply stream: the one way anything leaves a worker for a channel."""

from __future__ import annotations

import json
import logging

import redis

from channels import constants as K
from channels.schema import ChannelName, Inbound, Outbound

log = logging.getLogger(__name__)


def unnumbered(out: Outbound) -> str:
    """``out`` as the reply stream's Outbound JSON, but without ``first_seq``: the commit script
    numbers the replies as it writes them (``workers.turn_store``), so numbers follow the
    order of commits and a refused commit uses none."""
    return out.model_dump_json(exclude={"first_seq"})


def typing_fields(channel: ChannelName, conversation: str, meta: dict[str, str]) -> dict[str, str]:
    """A typing-indicator stream entry (best effort, never retried)."""
    data = {"channel": channel.value, "conversation": conversation, "meta": meta}
    return {"kind": "typing", "data": json.dumps(data)}


def delta_fields(inbound: Inbound, reply_id: str, text: str, so_far: str) -> dict[str, str]:
    """A preview stream entry: checked ``text`` to append to reply ``reply_id`` (``so_far``:
    all of it until now). Best effort, never retried."""
    data = {
        "channel": inbound.channel.value,
        "conversation": inbound.conversation,
        "meta": dict(inbound.meta),
        "turn": inbound.id,  # every take of the message grows the same platform message
        "reply_id": reply_id,
        "text": text,
        "so_far": so_far,
    }
    return {"kind": "delta", "data": json.dumps(data)}


class Previews:
    """The turn's delta sink (``brain.generation_grounded.delta_sink``): each checked piece of
    the reply being generated goes to the reply stream as a ``delta`` entry, so the channel
    shows it at once. The committed reply then carries ``streamed=reply_id`` (``mark``) and
    replaces the preview; once the turn is over (``close``) an abandoned generation writes
    nothing more."""

    def __init__(self, r: redis.Redis, inbound: Inbound, reply_id: str) -> None:
        self._r = r
        self._inbound = inbound
        self.reply_id = reply_id
        self.so_far = ""
        self.shown = False
        self.closed = False

    def __call__(self, text: str) -> None:
        if self.closed or not text:
            return
        self.so_far += text
        fields = delta_fields(self._inbound, self.reply_id, text, self.so_far)
        try:
            self._r.xadd(K.REPLY_STREAM, fields)  # type: ignore[arg-type]
            self.shown = True
        except redis.RedisError:
            log.warning("could not write a preview of the reply; the final reply follows")

    def close(self) -> None:
        self.closed = True

    def mark(self, outgoing: list[Outbound]) -> list[Outbound]:
        """``outgoing`` with the customer's reply naming the preview it replaces."""
        if not self.shown:
            return outgoing
        for i, out in enumerate(outgoing):
            if out.channel == self._inbound.channel and out.replies:
                if out.conversation == self._inbound.conversation:
                    marked = out.model_copy(update={"streamed": self.reply_id})
                    return [*outgoing[:i], marked, *outgoing[i + 1 :]]
        return outgoing
