"""Running a turn's work under its limits, the same way in every Celery pool (prefork, threads,
solo): the work runs in its own thread while the turn's thread waits for it with a deadline,
keeps the conversation lock alive and shows the typing indicator.

A stuck generation cannot be killed from Python; it is left behind (its result is never
committed) and the turn goes on with an apology. Lock renewal and the typing event are separate
steps: a failed typing write never keeps the lock from being renewed.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import redis

from workers.turn_store import ConversationLock

log = logging.getLogger(__name__)

T = TypeVar("T")

TYPING_AFTER_S = 0.5  # quick turns show no indicator: it would only flicker before the reply
TYPING_EVERY_S = 4.0


class TurnTimedOut(Exception):
    """The turn's work ran past ``OMNIGATE_TURN_TIME_LIMIT``; it is abandoned."""


class LockLost(Exception):
    """Another turn holds the conversation now (this one stalled past the lock TTL)."""


def run_guarded(
    work: Callable[[], T],
    *,
    limit_s: float,
    lock: ConversationLock,
    typing: Callable[[], object],
) -> T:
    """``work()``'s result, or ``TurnTimedOut`` after ``limit_s``, or ``LockLost`` as soon as
    a renewal finds the lock taken by another turn."""
    box: Future[T] = Future()

    def run() -> None:
        try:
            box.set_result(work())
        except BaseException as exc:  # handed to the waiting turn, which decides
            box.set_exception(exc)

    # The work thread runs in a copy of this context, so its log lines keep the turn's ids.
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(run,), name="turn-work", daemon=True).start()
    renew_every = lock.ttl_ms / 3000
    start = time.monotonic()
    deadline = start + limit_s
    next_renew, next_typing = start + renew_every, start + TYPING_AFTER_S
    while True:
        wait = max(0.0, min(deadline, next_renew, next_typing) - time.monotonic())
        try:
            return box.result(timeout=wait)
        except TimeoutError:
            pass
        now = time.monotonic()
        if now >= deadline:
            raise TurnTimedOut(f"the turn ran past its time limit of {limit_s:g}s")
        if now >= next_renew:
            next_renew = now + renew_every
            try:
                if not lock.renew():
                    raise LockLost("another turn holds the conversation now")
            except redis.RedisError:
                # The commit is fenced by the token: if the lock expires meanwhile, it says so.
                log.warning("could not renew a conversation lock", exc_info=True)
        if now >= next_typing:
            next_typing = now + TYPING_EVERY_S
            try:
                typing()
            except redis.RedisError:
                log.warning("could not show the typing indicator", exc_info=True)
