"""Live fan-out across gateway replicas: a reply produced for a conversation reaches the replica
that holds that customer's open connection (web socket, waiting ``/api/chat`` request).

One pattern subscription per replica (``og:live:*``); local listeners get their own queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from channels import constants as K

log = logging.getLogger(__name__)


class Live:
    """Publish to a conversation; listen to a conversation."""

    def __init__(self, r: aioredis.Redis) -> None:
        self._r = r
        self._listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Start the subscription loop and wait until it is subscribed."""
        self._task = asyncio.create_task(self._run(), name="live")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def publish(self, conv: str, event: dict[str, Any]) -> None:
        """Send ``event`` to every listener of ``conv`` on every replica."""
        await self._r.publish(K.LIVE + conv, json.dumps(event))

    @contextlib.asynccontextmanager
    async def listen(self, conv: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the events published to ``conv`` while the context is open."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners[conv].add(q)
        try:
            yield q
        finally:
            self._listeners[conv].discard(q)
            if not self._listeners[conv]:
                del self._listeners[conv]

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self._r.pubsub()
            try:
                await pubsub.psubscribe(K.LIVE + "*")
                self._ready.set()
                backoff = 0.2
                async for msg in pubsub.listen():
                    if msg["type"] != "pmessage":
                        continue
                    conv = msg["channel"].decode()[len(K.LIVE) :]
                    for q in list(self._listeners.get(conv, ())):
                        q.put_nowait(json.loads(msg["data"]))
            except (RedisError, OSError) as exc:
                log.warning("live subscription lost (%s); reconnecting", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
