"""One open widget: client frames in (messages to ingress), the conversation's live frames
and its replayed log out, under one lock so each seq is sent once and in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import WSCloseCode
from pydantic import ValidationError
from redis.exceptions import RedisError

from channels.base import ChannelHost
from channels.errors import TooMany, Unavailable
from channels.web import tokens as web_tokens
from channels.web.adapter import newest_seq, read_log
from channels.web.config import WebConfig
from channels.web.parse import BadFrame, MessageFrame, ResumeFrame, parse_frame, to_inbound
from channels.web.render import TYPING, delta_frame, error_frame
from channels.web.sequence import Delivered
from channels.web.socket import VisitorSocket, WebSocketDisconnect

log = logging.getLogger(__name__)

BURST = 10  # messages a visitor may send at once ...
REFILL_PER_S = 1.0  # ... and per second after that
CLOSE_TOKEN_EXPIRED = 4001
HOLD_S = 2.0  # how long a live reply waits for an earlier one that has not come yet


class VisitorConnection:
    """One open widget: client frames in, the conversation's frames out."""

    def __init__(
        self,
        host: ChannelHost,
        config: WebConfig,
        sock: VisitorSocket,
        visitor: web_tokens.Visitor,
        events: asyncio.Queue[dict[str, Any]],
        address: str | None = None,
    ) -> None:
        self.host = host
        self.config = config
        self.sock = sock
        self.visitor = visitor
        self.address = address  # the client's, for the per-address inbound limit
        self.events = events
        self.has = Delivered(0)  # set from the log when the connection starts
        self.held: dict[int, dict[str, Any]] = {}  # live replies waiting for an earlier one
        self._hold_until: float | None = None
        self._out = asyncio.Lock()  # replay and live frames never interleave
        self._tokens = float(BURST)
        self._refilled = time.monotonic()

    async def run(self) -> None:
        """Until the visitor leaves, the socket breaks or the token expires."""
        with contextlib.suppress(RedisError, OSError):
            self.has = Delivered(await newest_seq(self.host.redis, self.visitor.session_id))
        tasks = {
            asyncio.create_task(self._read_loop(), name="web-read"),
            asyncio.create_task(self._live_loop(), name="web-live"),
        }
        lifetime = max(self.visitor.expires_at - time.time(), 0.0)
        done, pending = await asyncio.wait(
            tasks, timeout=lifetime, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if not done:
            await self.sock.close(CLOSE_TOKEN_EXPIRED, "token expired")
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect):
                log.error("web socket of %s failed", self.visitor.session_id, exc_info=exc)
                await self.sock.close(WSCloseCode.INTERNAL_ERROR, "internal error")

    async def _read_loop(self) -> None:
        while True:
            raw = await self.sock.receive()
            if isinstance(raw, bytes):
                await self._error("frames must be JSON text, not binary")
                continue
            try:
                frame = parse_frame(raw, self.config.max_text_chars)
            except BadFrame as exc:
                await self._error(str(exc))
                continue
            if isinstance(frame, ResumeFrame):
                await self._resume(frame.after)
            else:
                await self._message(frame)

    async def _message(self, frame: MessageFrame) -> None:
        if not self._take_token():
            await self._error("too many messages; wait a moment and send again")
            return
        try:
            inbound = to_inbound(self.visitor.session_id, frame)
            inbound = inbound.model_copy(
                update={"meta": {**inbound.meta, "client": self.sock.remote}}
            )
            # False: a re-sent frame, already queued
            await self.host.ingress.submit(inbound, address=self.address)
        except ValidationError as exc:
            err = exc.errors()[0]
            await self._error(f"invalid message: {err['loc']}: {err['msg']}")
        except TooMany as exc:
            await self._error(str(exc))
        except Unavailable as exc:
            log.warning("a web message was not queued: %s", exc.detail)
            await self._error(str(exc))

    async def _resume(self, after: int) -> None:
        async with self._out:
            try:
                frames = await read_log(self.host.redis, self.visitor.session_id, after)
            except (RedisError, OSError):
                await self._send(
                    error_frame("the conversation could not be read; resume again shortly")
                )
                return
            for frame in frames:
                await self._send(frame)
            self.has.resumed(after, [int(f["seq"]) for f in frames])
            await self._release()

    async def _live_loop(self) -> None:
        while True:
            wait = None if self._hold_until is None else self._hold_until - time.monotonic()
            try:
                event = await asyncio.wait_for(self.events.get(), wait)
            except TimeoutError:
                async with self._out:
                    await self._release(force=True)  # the missing reply is late: go on
                continue
            kind = event.get("type")
            async with self._out:
                if kind == "typing":
                    await self._send(TYPING)
                elif kind == "delta":  # a preview: live only, in the order it came
                    await self._send(
                        delta_frame(str(event.get("reply_id", "")), str(event.get("text", "")))
                    )
                elif kind == "reply":
                    await self._offer(event)

    async def _offer(self, frame: dict[str, Any]) -> None:
        """A live reply: sent now if it is the next one, else held until the ones before it
        come (live, or from the log when their publish was lost) or ``HOLD_S`` passes."""
        seq = int(frame["seq"])
        if self.has(seq):
            return  # already replayed
        self.held[seq] = frame
        first = min(self.held)
        if first > self.has.next:
            with contextlib.suppress(RedisError, OSError):
                for logged in await read_log(
                    self.host.redis, self.visitor.session_id, self.has.floor
                ):
                    s = int(logged["seq"])
                    if s < first and not self.has(s):
                        self.held.setdefault(s, logged)
        await self._release()

    async def _release(self, force: bool = False) -> None:
        """Send the held replies that are next in line (all of them, in order, if ``force``)."""
        while self.held:
            seq = min(self.held)
            if self.has(seq):
                del self.held[seq]
                continue
            if seq > self.has.next:
                if not force:
                    break
                self.has.skip_to(seq)
            await self._send(self.held.pop(seq))
            self.has.add(seq)
        if not self.held:
            self._hold_until = None
        elif self._hold_until is None:
            self._hold_until = time.monotonic() + HOLD_S

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.sock.send(frame)

    async def _error(self, message: str) -> None:
        async with self._out:
            await self._send(error_frame(message))

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(BURST, self._tokens + (now - self._refilled) * REFILL_PER_S)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
