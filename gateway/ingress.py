"""Accepting a customer message: dedupe on the platform's id, queue it in its conversation's
inbox, and enqueue a turn. Every channel's inbound route ends here."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from celery import Celery
from prometheus_client import Counter
from redis.exceptions import RedisError

from channels import constants as K
from channels.schema import Inbound
from gateway.errors import Unavailable
from gateway.logs import bind
from gateway.settings import Settings

log = logging.getLogger(__name__)

INBOUND = Counter("omnigate_inbound_total", "Customer messages accepted", ["channel"])
DUPLICATES = Counter("omnigate_duplicates_total", "Platform re-deliveries dropped", ["channel"])


class Ingress:
    """Hands normalised messages to the workers, once each."""

    def __init__(self, r: aioredis.Redis, celery: Celery, settings: Settings) -> None:
        self._r = r
        self._celery = celery
        self._settings = settings

    async def submit(self, inbound: Inbound) -> bool:
        """Queue ``inbound`` for a turn. False when the platform already sent this message.

        Raises ``Unavailable`` when Redis or the broker cannot take it; nothing is then
        recorded, so the platform's retry is accepted later.
        """
        bind(inbound.conversation_key, inbound.id)
        dedupe = K.DEDUPE + inbound.dedupe_key
        conv = inbound.conversation_key
        data = inbound.model_dump_json()
        try:
            fresh = await self._r.set(dedupe, inbound.id, nx=True, ex=self._settings.dedupe_ttl_s)
        except RedisError as exc:
            raise Unavailable(f"Redis is unreachable ({exc})") from exc
        if not fresh:
            DUPLICATES.labels(inbound.channel.value).inc()
            return False
        try:
            pipe = self._r.pipeline(transaction=True)
            pipe.rpush(K.INBOX + conv, data)
            pipe.sadd(K.ACTIVE, conv)
            await pipe.execute()
            await asyncio.to_thread(self._enqueue, conv)
        except Exception as exc:
            # Undo, so that the platform's retry is not mistaken for a duplicate.
            await self._undo(dedupe, conv, data)
            raise Unavailable(f"the message could not be queued ({exc})") from exc
        INBOUND.labels(inbound.channel.value).inc()
        return True

    def _enqueue(self, conv: str) -> None:
        self._celery.send_task(
            K.TASK_TURN,
            args=[conv],
            queue=K.QUEUE_BRAIN,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
        )

    async def _undo(self, dedupe: str, conv: str, data: str) -> None:
        try:
            await self._r.lrem(K.INBOX + conv, 1, data)
            await self._r.delete(dedupe)
        except RedisError:
            log.error("could not undo a half-queued message of %s", conv)
