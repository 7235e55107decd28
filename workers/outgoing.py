"""Writing to the reply stream: the one way anything leaves a worker for a channel."""

from __future__ import annotations

import json

from channels.schema import ChannelName, Outbound


def unnumbered(out: Outbound) -> str:
    """``out`` as the reply stream's Outbound JSON, but without ``first_seq``: the commit script
    numbers the replies as it writes them (``workers.turn_store``), so numbers follow the
    order of commits and a refused commit uses none."""
    return out.model_dump_json(exclude={"first_seq"})


def typing_fields(channel: ChannelName, conversation: str, meta: dict[str, str]) -> dict[str, str]:
    """A typing-indicator stream entry (best effort, never retried)."""
    data = {"channel": channel.value, "conversation": conversation, "meta": meta}
    return {"kind": "typing", "data": json.dumps(data)}
