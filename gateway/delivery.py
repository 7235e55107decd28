"""Reply delivery: read the reply stream as one consumer of the ``gateway`` group, hand each
reply to its channel adapter, and acknowledge it only once the platform has it.

This is the one send loop of every channel: the adapter renders a reply as platform messages
(pure) and sends one message when asked; here the long button payloads are stored, each message
waits for its platform's rate limits (``gateway.ratelimit``), is retried, and is marked.
At-least-once from the stream, exactly-once to the customer: each message that reached the
platform is marked ``og:sent:<entry>:<reply>:<part>`` before the entry is acknowledged, so an
entry taken over after a crash (``XAUTOCLAIM``) re-sends only what was not sent. Replies of
one conversation are delivered in order; conversations proceed in parallel.

Order across replicas: a consumer group spreads one conversation's entries over replicas, so a
reply waits until ``og:delivered:<conv>`` (only ever moved forward) reaches its predecessor. The
replica sending a reply holds ``og:delivering:<conv>`` while it does, however many seconds a
multi-part reply takes at a platform's pace; only when neither that lease nor the delivered
mark has moved for ``OMNIGATE_REPLY_ORDER_WAIT`` (the predecessor is lost) does a reply go ahead.

Previews: while a turn generates an LLM reply, the worker writes each checked clause as a
``delta`` entry (best effort, like ``typing``): the adapter shows it (``preview``: a delta frame
in the widget, a message that grows by edits on Telegram and Slack, at the platform's pace; a
preview is skipped when a newer one of the same reply waits, or when the platform's pace has
no free slot at once: previews never wait, so they never hold a final reply back). The final reply
(``Outbound.streamed``) goes through the send loop above, marks and all; its first message
replaces the preview message (``replace``) instead of following it. ``og:preview:<conv>:<turn>``
(the message answered: a turn taken again after a crash grows the same message) holds the
preview's handle, ``final:<handle>`` once the final reply claimed it, so a late
preview never edits or sends after it; ``og:preview-editing:<conv>:<turn>`` is held while one
preview edit is in flight, and the final reply waits for it.

An entry nobody can read, or that no adapter of this gateway can send, goes to the dead letters
(``omnigate dead-letters``) instead of staying pending for ever; a restarted replica reads its
own pending history once, page by page, then new entries, so such an entry never holds new
replies back.
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
from channels import payloads
from channels.base import ChannelAdapter, DeliveryFailed, Preview, RetryLater
from channels.log_ids import bind
from channels.schema import ChannelName, ConversationAddress, Outbound, Unreadable, parse_stored
from gateway import dead_letters
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings

log = logging.getLogger(__name__)

DELIVERED = Counter("omnigate_replies_delivered_total", "Replies handed to a platform", ["channel"])
RETRIES = Counter("omnigate_delivery_retries_total", "Delivery attempts put off", ["channel"])
FAILED = Counter("omnigate_delivery_failed_total", "Replies a platform refused", ["channel"])

# Failed sends (errors, not a platform's "wait"), then the entry stays pending and is retried
# by the claim loop.
MAX_ATTEMPTS = 8
MARK_ATTEMPTS = 8  # writes of a "sent" mark, about 16 s of retries through a Redis restart
REDIS_ATTEMPTS = 6  # whole deliveries of one entry through Redis errors (~11 s)
LEASE_MS = 10_000  # og:delivering lives this long unless refreshed (at every part and wait)
LEASE_EVERY_S = 3.0  # refresh while waiting to retry

# KEYS: delivered. ARGV: seq, delivered ttl. The delivered mark never moves backwards,
# whichever replica finishes first.
_ADVANCE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
else
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 1
"""

# KEYS: preview. ARGV: ttl. The final reply claims the preview: "final:<handle>" (handle may
# be empty: nothing was shown). Returns the handle.
_CLAIM_PREVIEW = """
local v = redis.call('GET', KEYS[1]) or ''
if string.sub(v, 1, 6) == 'final:' then v = string.sub(v, 7) end
redis.call('SET', KEYS[1], 'final:' .. v, 'EX', tonumber(ARGV[1]))
return v
"""

# KEYS: preview. ARGV: handle, ttl. A preview's message handle, kept final if claimed meanwhile.
_KEEP_PREVIEW = """
local v = redis.call('GET', KEYS[1]) or ''
local prefix = ''
if string.sub(v, 1, 6) == 'final:' then prefix = 'final:' end
redis.call('SET', KEYS[1], prefix .. ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""


class Delivery:
    """The delivery loop of one gateway replica."""

    def __init__(
        self,
        r: aioredis.Redis,
        adapters: dict[ChannelName, ChannelAdapter[Any]],
        settings: Settings,
    ) -> None:
        self._r = r
        self._adapters = adapters
        self._settings = settings
        self.consumer = settings.gateway_id or f"{socket.gethostname()}-{os.getpid()}"
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._inflight: set[bytes] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._advance_script = r.register_script(_ADVANCE)
        self._claim_preview = r.register_script(_CLAIM_PREVIEW)
        self._keep_preview = r.register_script(_KEEP_PREVIEW)
        # conv:reply_id → the newest delta entry read for it (older ones may be skipped)
        self._newest_preview: dict[str, bytes] = {}
        self._limiters: dict[ChannelName, RateLimiter] = {}

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
        # First our own pending entries (a restart with the same consumer name), page by page
        # and once, then new ones: an entry that fails again stays pending for the claim loop
        # and never keeps this loop from reading new replies.
        last_id = "0"
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
            if last_id != ">":
                last_id = entries[-1][0] if entries else ">"
            for entry_id, fields in entries:
                if fields:
                    self._schedule(entry_id, fields)
                else:  # a pending entry deleted meanwhile comes back empty: nothing to send
                    with contextlib.suppress(RedisError, OSError):
                        await self._ack(entry_id)

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
        except (KeyError, ValueError, TypeError, UnicodeDecodeError):
            kind, data, conv = "unreadable", repr(fields)[:2000], "?"
        if kind == "delta":
            with contextlib.suppress(KeyError, ValueError, TypeError):
                self._newest_preview[f"{conv}:{json.loads(data)['reply_id']}"] = entry_id
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
            if kind == "typing":
                await self._typing(data)
                await self._ack(entry_id)
            elif kind == "delta":
                try:
                    await self._preview(entry_id, data)
                except Exception as exc:  # best effort: the final reply carries everything
                    log.info("a preview was not shown: %s", exc)
                await self._ack(entry_id)
            elif kind == "reply":
                try:
                    out = parse_stored(Outbound, data)
                except Unreadable as exc:
                    await self._dead(entry_id, "?", f"unreadable reply: {exc}", data)
                    return
                if await self._deliver_through_hiccups(entry_id, out):
                    await self._ack(entry_id)
            else:
                await self._dead(entry_id, "?", f"unreadable reply-stream entry ({kind})", data)
        except Exception:
            log.exception("delivery of %s failed; it stays pending", entry_id)
        finally:
            self._inflight.discard(entry_id)

    async def _dead(self, entry_id: bytes, conv: str, reason: str, raw: str) -> None:
        """Give up on a stream entry: keep it in the dead letters, acknowledge it."""
        log.error("reply-stream entry %s goes to the dead letters: %s", entry_id, reason)
        pipe = self._r.pipeline(transaction=True)
        pipe.rpush(K.DEAD_LETTERS, dead_letters.entry("reply", conv, reason, raw))
        pipe.ltrim(K.DEAD_LETTERS, -dead_letters.KEEP, -1)
        pipe.delete(K.REPLY_ATTEMPTS + entry_id.decode())
        await pipe.execute()
        await self._ack(entry_id)

    async def _typing(self, data: str) -> None:
        d = json.loads(data)
        adapter = self._adapters.get(ChannelName(d["channel"]))
        if adapter is not None:
            with contextlib.suppress(Exception):
                limiter = self._limiter(adapter)
                for pace in adapter.paces(d["conversation"], typing=True):
                    await limiter.wait(pace.key, pace.per_s)
                await adapter.typing(d["conversation"], d.get("meta") or {})

    async def _preview(self, entry_id: bytes, data: str) -> None:
        """Show one ``delta`` entry (see the module's docstring). Never retried."""
        d = json.loads(data)
        adapter = self._adapters.get(ChannelName(d["channel"]))
        if adapter is None:
            return
        p = Preview(
            conversation=str(d["conversation"]),
            meta=dict(d.get("meta") or {}),
            reply_id=str(d["reply_id"]),
            text=str(d["text"]),
            so_far=str(d.get("so_far") or d["text"]),
            turn=str(d.get("turn") or d["reply_id"]),
        )
        conv = ConversationAddress(adapter.name, p.conversation).key()
        newest = self._newest_preview.get(f"{conv}:{p.reply_id}")
        if newest == entry_id:
            del self._newest_preview[f"{conv}:{p.reply_id}"]
        # One platform message per answered message: a take after a crash edits the same one.
        key = f"{conv}:{p.turn}"
        if not adapter.preview_replaces:
            await adapter.preview(p, None)
            return
        if newest is not None and newest != entry_id:
            return  # a newer preview of this reply waits and shows all this one would
        editing = K.PREVIEW_EDITING + key
        if not await self._r.set(editing, self.consumer, nx=True, px=LEASE_MS):
            return  # another replica edits it right now
        try:
            raw: Any = await self._r.get(K.PREVIEW + key)
            shown = raw.decode() if isinstance(raw, bytes) else raw
            if shown is not None and shown.startswith("final:"):
                return  # the checked reply has replaced the preview already
            limiter = self._limiter(adapter)
            paces = adapter.paces(p.conversation, preview=True)
            if not await limiter.try_take([(pace.key, pace.per_s) for pace in paces]):
                return  # no free slot now: a later preview, or the final reply, shows it
            try:
                handle = await adapter.preview(p, shown)
            except RetryLater as exc:
                if exc.hold is not None:
                    await limiter.hold(exc.hold, exc.delay_s)
                raise
            if handle:
                await self._keep_preview(
                    keys=[K.PREVIEW + key], args=[handle, self._settings.dedupe_ttl_s]
                )
        finally:
            await self._r.delete(editing)

    async def _claim_streamed(self, out: Outbound) -> str | None:
        """The preview message the first message of ``out``'s reply 0 replaces (None: none
        was shown, it is sent as usual). Late previews of it are refused from here on; one
        in flight finishes first."""
        if out.streamed is None or not self._adapters[out.channel].preview_replaces:
            return None
        key = f"{out.conversation_key}:{out.in_reply_to or out.streamed}"
        args = [self._settings.dedupe_ttl_s]
        await self._claim_preview(keys=[K.PREVIEW + key], args=args)
        loop = asyncio.get_running_loop()
        until = loop.time() + LEASE_MS / 1000
        while loop.time() < until:
            if not await self._r.exists(K.PREVIEW_EDITING + key):
                break
            await asyncio.sleep(0.05)
        # Again: a preview that was sending its first message meanwhile has kept its handle.
        handle = await self._claim_preview(keys=[K.PREVIEW + key], args=args)
        text = handle.decode() if isinstance(handle, bytes) else str(handle or "")
        return text or None

    async def _deliver_through_hiccups(self, entry_id: bytes, out: Outbound) -> bool:
        """``_deliver``, retried in place when Redis fails under it (dead pooled connections
        after a restart): left pending, the entry would wait for the claim loop while the
        conversation's next reply went ahead of it. The sent marks make a retry resend
        nothing."""
        for attempt in range(REDIS_ATTEMPTS):
            try:
                return await self._deliver(entry_id, out)
            except (RedisError, OSError) as exc:
                if attempt == REDIS_ATTEMPTS - 1:
                    raise
                log.warning("delivery of %s met a Redis error (%s); retrying", entry_id, exc)
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        return False

    async def _deliver(self, entry_id: bytes, out: Outbound) -> bool:
        """Send every reply of ``out`` not sent yet. True when the entry is done."""
        conv = out.conversation_key
        bind(conv, out.in_reply_to)
        adapter = self._adapters.get(out.channel)
        if adapter is None:
            tries = int(await self._r.incr(K.REPLY_ATTEMPTS + entry_id.decode()))
            if tries < self._settings.reply_max_attempts:
                log.error(
                    "no %s adapter on this gateway; reply %s stays pending", out.channel, entry_id
                )
                return False
            await self._dead(
                entry_id,
                conv,
                f"no {out.channel.value} adapter on any gateway",
                out.model_dump_json(),
            )
            await self._advance(conv, out.first_seq + len(out.replies) - 1)
            return False
        await self._wait_for_predecessor(out)
        entry = entry_id.decode()
        for index in range(len(out.replies)):
            rendered = adapter.render(out, index)
            await payloads.store(self._r, rendered.stored)
            marks = [f"{K.SENT}{entry}:{index}:{part}" for part in range(len(rendered.parts))]
            for number, part in enumerate(rendered.parts):
                if await self._lease(conv, entry_id, marks[number]):
                    continue
                shown = await self._claim_streamed(out) if index == number == 0 else None
                sent = await self._send_part(adapter, out, entry_id, part, number, shown)
                if sent is None:
                    return False
                if not sent:  # refused: the rest of this reply is not sent either
                    await self._mark(marks[number:])
                    break
                await self._mark(marks[number : number + 1])
            await self._advance(conv, out.first_seq + index)
        return True

    async def _send_part(
        self,
        adapter: ChannelAdapter[Any],
        out: Outbound,
        entry_id: bytes,
        part: Any,
        number: int,
        shown: str | None = None,
    ) -> bool | None:
        """Send one message at the platform's pace, retrying (as an edit of preview message
        ``shown`` when there is one): True once sent, False when the platform refused it for
        good, None after ``MAX_ATTEMPTS`` failed sends (the entry stays pending for the
        claim loop)."""
        channel, conv = out.channel.value, out.conversation_key
        limiter = self._limiter(adapter)
        attempt = 0
        while attempt < MAX_ATTEMPTS:
            for pace in adapter.paces(out.conversation):
                await limiter.wait(pace.key, pace.per_s)
            try:
                if shown is None:
                    await adapter.send(out, part, number)
                else:
                    await adapter.replace(out, part, shown)
                DELIVERED.labels(channel).inc()
                return True
            except RetryLater as exc:
                # Not an attempt: the platform said when to come back, and we hold the
                # conversation's lease until then. Giving up here would leave the entry
                # to the claim loop, queued behind its own successor, which waits on it.
                RETRIES.labels(channel).inc()
                log.info("%s asks to wait %.1fs: %s", channel, exc.delay_s, exc.reason)
                if exc.hold is not None:
                    await limiter.hold(exc.hold, exc.delay_s)
                await self._sleep_holding(conv, entry_id, exc.delay_s)
            except DeliveryFailed as exc:
                FAILED.labels(channel).inc()
                log.error("%s refused a reply to %s: %s", channel, out.conversation, exc)
                return False
            except Exception:
                RETRIES.labels(channel).inc()
                attempt += 1
                log.exception("sending to %s failed (attempt %d)", channel, attempt)
                await self._sleep_holding(conv, entry_id, min(2 ** (attempt - 1) * 0.5, 30))
        return None

    def _limiter(self, adapter: ChannelAdapter[Any]) -> RateLimiter:
        """The send-rate limiter of ``adapter``'s platform (one per platform, made once)."""
        limiter = self._limiters.get(adapter.name)
        if limiter is None:
            limiter = self._limiters[adapter.name] = RateLimiter(self._r, adapter.name.value)
        return limiter

    async def _mark(self, marks: list[str]) -> None:
        """These messages of a reply are done (sent, or refused for good).

        Retried through a Redis hiccup (a restart leaves dead pooled connections behind):
        the message is already on the platform, and an entry left pending without its mark
        would be sent again by the claim loop."""
        for attempt in range(MARK_ATTEMPTS):
            pipe = self._r.pipeline(transaction=False)
            for mark in marks:
                pipe.set(mark, 1, ex=self._settings.dedupe_ttl_s)
            try:
                await pipe.execute()
                return
            except (RedisError, OSError):
                if attempt == MARK_ATTEMPTS - 1:
                    raise
                log.warning("could not mark a sent message yet (attempt %d)", attempt + 1)
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))

    async def _lease(self, conv: str, entry_id: bytes, mark: str) -> bool:
        """Tell the other replicas this one is sending a reply of ``conv`` (so a reply waiting
        behind it keeps waiting, however long this one takes); True when reply ``mark`` was
        sent already."""
        pipe = self._r.pipeline(transaction=False)
        pipe.set(K.DELIVERING + conv, entry_id, px=LEASE_MS)
        pipe.exists(mark)
        _, sent = await pipe.execute()
        return bool(sent)

    async def _sleep_holding(self, conv: str, entry_id: bytes, seconds: float) -> None:
        """Wait before a retry, keeping the lease of ``conv`` fresh meanwhile."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while (left := until - loop.time()) > 0:
            await asyncio.sleep(min(left, LEASE_EVERY_S))
            with contextlib.suppress(RedisError, OSError):
                await self._r.set(K.DELIVERING + conv, entry_id, px=LEASE_MS)

    async def _advance(self, conv: str, seq: int) -> None:
        """Reply ``seq`` of ``conv`` is done: sent, refused, or given up on."""
        keys = [K.DELIVERED + conv]
        await self._advance_script(keys=keys, args=[seq, self._settings.session_ttl_s])

    async def _wait_for_predecessor(self, out: Outbound) -> None:
        """Hold ``out`` until the conversation's previous reply has been delivered, by whichever
        replica read it. Goes ahead only when the predecessor is lost: no replica has been
        sending for the conversation and the delivered mark has not moved for
        ``reply_order_wait_s``."""
        conv = out.conversation_key
        loop = asyncio.get_running_loop()
        patience = self._settings.reply_order_wait_s
        deadline = loop.time() + patience
        seen: int | None = None
        pause = 0.005
        while True:
            raw, sending = await self._r.mget([K.DELIVERED + conv, K.DELIVERING + conv])
            last = int(raw) if raw is not None else 0
            if out.first_seq <= last + 1:
                return
            if sending is not None or last != seen:
                seen, deadline = last, loop.time() + patience
            elif loop.time() >= deadline:
                log.warning(
                    "reply %d of %s goes ahead: its predecessor was not delivered in %gs",
                    out.first_seq,
                    conv,
                    patience,
                )
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

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
    """The conversation key a stream entry (a reply or a typing event) is for."""
    d = json.loads(data)
    if not isinstance(d, dict):
        raise ValueError("a stream entry's data is not a JSON object")
    return ConversationAddress(ChannelName(d["channel"]), str(d["conversation"])).key()
