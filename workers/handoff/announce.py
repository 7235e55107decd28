"""Telling the agents' consoles that a handed-off conversation changed (after its turn is
committed): the conversation joins the open handoffs, and the web console's live queue and
open transcript refresh."""

from __future__ import annotations

import json
import logging

import redis
from redis.exceptions import RedisError

from brain.types import Session
from channels import constants as K

log = logging.getLogger(__name__)


def announce(r: redis.Redis, conv: str, session: Session) -> None:
    """After a committed turn of ``conv``: a conversation that was ever handed off is listed
    in the open handoffs while with an agent, and the consoles hear that it changed (best
    effort: a console also refreshes on its own)."""
    if session.handoff is None:
        return
    try:
        if session.state == "with_agent":
            r.sadd(K.HANDOFF_OPEN, conv)
        else:
            r.srem(K.HANDOFF_OPEN, conv)
        r.publish(K.LIVE + K.AGENTS_LIVE, json.dumps({"conv": conv, "state": session.state}))
    except (RedisError, OSError) as exc:
        log.warning("could not tell the agents' consoles about %s: %s", conv, exc)
