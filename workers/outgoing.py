"""Writing to the reply stream: the one way anything leaves a worker for a channel."""

from __future__ import annotations

import json

import redis

from channels import constants as K
from channels.schema import ChannelName, Outbound


def number(r: redis.Redis, out: Outbound, ttl_s: int) -> Outbound:
    """Give ``out`` its sequence numbers (the caller holds the conversation lock). The counter
    lives as long as the conversation's memory."""
    pipe = r.pipeline(transaction=True)
    pipe.incrby(K.SEQ + out.conversation_key, len(out.replies))
    pipe.expire(K.SEQ + out.conversation_key, ttl_s)
    last = int(pipe.execute()[0])
    return out.model_copy(update={"first_seq": last - len(out.replies) + 1})


def stream_fields(out: Outbound) -> dict[str, str]:
    """A reply stream entry."""
    return {"kind": "reply", "data": out.model_dump_json()}


def typing_fields(channel: ChannelName, conversation: str, meta: dict[str, str]) -> dict[str, str]:
    """A typing-indicator stream entry (best effort, never retried)."""
    data = {"channel": channel.value, "conversation": conversation, "meta": meta}
    return {"kind": "typing", "data": json.dumps(data)}
