"""Reply delivery: read the reply stream as one consumer of the ``gateway`` group, hand each
reply to its channel adapter, and acknowledge it only once the platform has it.

At-least-once from the stream, exactly-once to the customer: a reply that reached the platform
is marked ``og:sent:<entry>:<i>`` before the entry is acknowledged, so an entry taken over
after a crash (``XAUTOCLAIM``) re-sends only what was not sent. Replies of one conversation are
delivered in order; conversations proceed in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError, ResponseError

from channels import constants as K
from channels.base import ChannelAdapter, DeliveryFailed, RetryLater
from channels.schema import ChannelName, Outbound
from gateway.logs import bind
from gateway.settings import Settings

log = logging.getLogger(__name__)

DELIVERED = Counter("omnigate_replies_delivered_total", "Replies handed to a platform", ["channel"])
RETRIES = Counter("omnigate_delivery_retries_total", "Delivery attempts put off", ["channel"])
FAILED = Counter("omnigate_delivery_failed_total", "Replies a platform refused", ["channel"])

MAX_ATTEMPTS = 8  # then the entry stays pending and is retried by the claim loop
ORDER_WAIT_S = 3.0


class Delivery:
    """The delivery loop of one gateway replica."""

    def __init__(
        self, r: aioredis.Redis, adapters: dict[ChannelName, ChannelAdapter], settings: Settings
    ) -> None:
        self._r = r
        self._adapters = adapters
        self._settings = settings
        self.consumer = settings.gateway_id or f"{socket.gethostname()}-{os.getpid()}"
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._inflight: set[bytes] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Create the consumer group if needed and start reading."""
        await ensure_group(self._r)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="delivery-read"),
            asyncio.create_task(self._claim_loop(), name="delivery-claim"),
        ]

    async def close(self) -> None:
        """Stop reading; replies being sent finish or stay pending for the next start."""
        for t in self._tasks:
            t.cancel()
        for t in [*self._tasks, *self._tails.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _read_loop(self) -> None:
        last_id = "0"  # first our own pending entries (a restart with the same id), then new ones
        while True:
            try:
                resp: Any = await self._r.xreadgroup(
                    K.REPLY_GROUP, self.consumer, {K.REPLY_STREAM: last_id}, count=100, block=1000
                )
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    await ensure_group(self._r)
                    continue
                raise
            except (RedisError, OSError) as exc:
                log.warning("reply stream unreachable (%s); retrying", exc)
                await asyncio.sleep(1)
                continue
            entries = resp[0][1] if resp else []
            if last_id == "0" and not entries:
                last_id = ">"
            for entry_id, fields in entries:
                self._schedule(entry_id, fields)

    async def _claim_loop(self) -> None:
        """Take over entries another (dead) replica left unacknowledged; keep our own entries
        in flight (waiting on a rate limit or a retry) fresh, so no live replica's entry is
        taken over and sent twice."""
        idle = self._settings.reply_claim_idle_ms
        while True:
            await asyncio.sleep(max(idle / 3000, 0.05))
            try:
                if self._inflight:
                    await self._r.xclaim(
                        K.REPLY_STREAM,
                        K.REPLY_GROUP,
                        self.consumer,
                        min_idle_time=0,
                        message_ids=list(self._inflight),
                        justid=True,
                    )
                claim: Any = await self._r.xautoclaim(
                    K.REPLY_STREAM, K.REPLY_GROUP, self.consumer, min_idle_time=idle, count=100
                )
            except (RedisError, OSError) as exc:
                log.warning("claim loop: %s", exc)
                continue
            for entry_id, fields in claim[1]:
                if fields:
                    self._schedule(entry_id, fields)

    def _schedule(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        if entry_id in self._inflight:
            return
        try:
            kind = fields[b"kind"].decode()
            data = fields[b"data"].decode()
            conv = _conv_of(kind, data)
        except (KeyError, ValueError, UnicodeDecodeError):
            log.error("dropping a malformed reply-stream entry %s", entry_id)
            kind, data, conv = "malformed", "", "?"
        self._inflight.add(entry_id)
        prev = self._tails.get(conv)
        task = asyncio.create_task(self._after(prev, entry_id, kind, data))
        self._tails[conv] = task
        task.add_done_callback(lambda t: self._forget(conv, t))

    def _forget(self, conv: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(conv) is task:
            del self._tails[conv]

    async def _after(
        self, prev: asyncio.Task[None] | None, entry_id: bytes, kind: str, data: str
    ) -> None:
        if prev is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await prev
        try:
            if kind == "malformed":
                await self._ack(entry_id)
            elif kind == "typing":
                await self._typing(data)
                await self._ack(entry_id)
            elif await self._deliver(entry_id, Outbound.model_validate_json(data)):
                await self._ack(entry_id)
        except Exception:
            log.exception("delivery of %s failed; it stays pending", entry_id)
        finally:
            self._inflight.discard(entry_id)

    async def _typing(self, data: str) -> None:
        d = json.loads(data)
        adapter = self._adapters.get(ChannelName(d["channel"]))
        if adapter is not None:
            with contextlib.suppress(Exception):
                await adapter.typing(d["conversation"], d.get("meta") or {})

    async def _deliver(self, entry_id: bytes, out: Outbound) -> bool:
        """Send every reply of ``out`` not sent yet. True when the entry is done."""
        adapter = self._adapters.get(out.channel)
        if adapter is None:
            log.error(
                "no %s adapter on this gateway; reply %s stays pending", out.channel, entry_id
            )
            return False
        bind(out.conversation_key, out.in_reply_to)
        channel = out.channel.value
        await self._wait_for_predecessor(out)
        for index in range(len(out.replies)):
            mark = f"{K.SENT}{entry_id.decode()}:{index}"
            if await self._r.exists(mark):
                continue
            for attempt in range(MAX_ATTEMPTS):
                try:
                    await adapter.send(out, index)
                    DELIVERED.labels(channel).inc()
                    break
                except RetryLater as exc:
                    RETRIES.labels(channel).inc()
                    log.info("%s asks to wait %.1fs: %s", channel, exc.delay_s, exc.reason)
                    await asyncio.sleep(exc.delay_s)
                except DeliveryFailed as exc:
                    FAILED.labels(channel).inc()
                    log.error("%s refused a reply to %s: %s", channel, out.conversation, exc)
                    break
                except Exception:
                    RETRIES.labels(channel).inc()
                    log.exception("sending to %s failed (attempt %d)", channel, attempt + 1)
                    await asyncio.sleep(min(2**attempt * 0.5, 30))
            else:
                return False
            pipe = self._r.pipeline(transaction=True)
            pipe.set(mark, 1, ex=self._settings.dedupe_ttl_s)
            pipe.set(
                K.DELIVERED + out.conversation_key,
                out.first_seq + index,
                ex=self._settings.session_ttl_s,
            )
            await pipe.execute()
        return True

    async def _wait_for_predecessor(self, out: Outbound) -> None:
        """Hold ``out`` until the conversation's previous reply has been delivered, by whichever
        replica read it: a consumer group spreads one conversation's entries over replicas.
        After ORDER_WAIT_S (a replica died holding the predecessor) it goes anyway."""
        key = K.DELIVERED + out.conversation_key
        deadline = asyncio.get_running_loop().time() + ORDER_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            raw = await self._r.get(key)
            last = int(raw) if raw is not None else 0
            if out.first_seq <= last + 1:
                return
            await asyncio.sleep(0.02)
        log.warning(
            "reply %d of %s went ahead of its predecessor", out.first_seq, out.conversation_key
        )

    async def _ack(self, entry_id: bytes) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.xack(K.REPLY_STREAM, K.REPLY_GROUP, entry_id)
        pipe.xdel(K.REPLY_STREAM, entry_id)
        await pipe.execute()


async def ensure_group(r: aioredis.Redis) -> None:
    """Create the reply stream and its consumer group (idempotent)."""
    try:
        await r.xgroup_create(K.REPLY_STREAM, K.REPLY_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _conv_of(kind: str, data: str) -> str:
    d = json.loads(data)
    return f"{d['channel']}:{d['conversation']}"
