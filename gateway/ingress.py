"""Accepting a customer message: every channel's inbound route ends here. ``Ingress.submit``
runs the one enqueue step (``gateway.enqueue``: dedupe, limits, inbox, active, the turn task)
off the event loop and turns its outcome into the route's answer.
"""

from __future__ import annotations

import asyncio

import redis
from celery import Celery
from prometheus_client import Counter
from redis.exceptions import RedisError

from channels.errors import Unavailable
from channels.log_ids import bind
from channels.schema import Inbound
from gateway.enqueue import enqueue
from gateway.settings import Settings

INBOUND = Counter("omnigate_inbound_total", "Customer messages accepted", ["channel"])
DUPLICATES = Counter("omnigate_duplicates_total", "Platform re-deliveries dropped", ["channel"])


class Ingress:
    """Hands normalised messages to the workers, once each."""

    def __init__(self, r: redis.Redis, celery: Celery, settings: Settings) -> None:
        self._r = r
        self._celery = celery
        self._settings = settings

    async def submit(self, inbound: Inbound, address: str | None = None) -> bool:
        """Store ``inbound`` for a turn. False when the platform already sent this message.

        ``address`` (the client's, for web chat and ``/api/chat``) is counted against the
        per-address limit. Raises ``TooMany`` over a limit and ``Unavailable`` when Redis
        cannot take it; in both cases nothing is stored, so a later retry is accepted.
        """
        bind(inbound.conversation_key, inbound.id)
        try:
            fresh = await asyncio.to_thread(
                enqueue, self._r, self._celery, inbound, self._settings, address=address
            )
        except (RedisError, OSError) as exc:
            raise Unavailable(f"Redis cannot take the message ({exc})") from exc
        (INBOUND if fresh else DUPLICATES).labels(inbound.channel.value).inc()
        return fresh

    def close(self) -> None:
        """Release the Redis client."""
        self._r.close()
