"""The turn task. A message waits in its conversation's inbox; ``turn`` takes the oldest one,
holding the conversation lock, answers it, and writes the replies to the reply stream.

Ordering: the gateway appends each message to ``og:inbox:<conv>`` and enqueues a ``turn`` task
for the conversation. A task that cannot take the lock returns at once — the lock holder
enqueues another task after its turn while the inbox is not empty — so messages of one
conversation are answered one at a time and in the order they came, on any number of workers.

Crash safety: the message being answered sits in ``og:processing:<conv>`` until the replies, the
session and a done-marker are written in one MULTI; a turn redelivered after a crash finds it
there and, if it was already answered, does not answer it twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any, Literal

import redis
from celery import signals
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError
from redis.exceptions import LockError
from redis.lock import Lock

from brain.types import HistoryItem, Session, Turn
from channels import constants as K
from channels.schema import Inbound, Outbound, Reply
from gateway.logs import bind
from gateway.settings import Settings
from workers import people
from workers.celery_app import app
from workers.context import WorkerContext, forget_context, worker_context
from workers.guessing import GuessGuard
from workers.handoff import state as handoff
from workers.handoff.timeout import schedule
from workers.memory import dump_session, load_session, remember, session_key, transcript_text
from workers.outgoing import number, stream_fields, typing_fields

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. Please try again in a moment."
TYPING_AFTER_S = 0.5
TYPING_EVERY_S = 4.0
DONE_TTL_S = 7 * 24 * 3600
# The conversation lock lives this long unless the turn holding it extends it (every
# TYPING_EVERY_S): a killed worker's conversation is free again within this time.
LOCK_TTL_S = 12
SWEEP_EVERY_S = 5.0

# Forget a conversation in the active set once nothing of it waits (atomic with the check).
_RETIRE = """
if redis.call('LLEN', KEYS[1]) == 0 and redis.call('LLEN', KEYS[2]) == 0 then
  return redis.call('SREM', KEYS[3], ARGV[1])
end
return 0
"""


@app.task(name=K.TASK_TURN, bind=True, acks_late=True, max_retries=None)
def turn(self: object, conv: str) -> None:
    """Answer the oldest waiting message of conversation ``conv`` (``channel:conversation``)."""
    ctx = worker_context()
    r = ctx.redis
    # Not thread-local: the typing thread extends the lock while the turn runs.
    lock = r.lock(K.LOCK + conv, timeout=LOCK_TTL_S, blocking=False, thread_local=False)
    if not lock.acquire():
        return  # the holder chains the next turn
    try:
        _answer_next(ctx, conv, lock)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("lock of %s expired during the turn", conv)
    # After releasing: a message pushed while we held the lock found it taken, so it is ours.
    keys = [K.INBOX + conv, K.PROCESSING + conv, K.ACTIVE]
    if not r.eval(_RETIRE, 3, *keys, conv):
        app.send_task(K.TASK_TURN, args=[conv])


def _answer_next(ctx: WorkerContext, conv: str, lock: Lock) -> None:
    r, settings = ctx.redis, ctx.settings
    raw: Any = r.lindex(K.PROCESSING + conv, 0) or r.lmove(
        K.INBOX + conv, K.PROCESSING + conv, "LEFT", "RIGHT"
    )
    if raw is None:
        return
    try:
        inbound = Inbound.model_validate_json(raw)
    except ValidationError:
        log.error("dropping an unreadable message of %s (%d bytes)", conv, len(raw))
        r.lrem(K.PROCESSING + conv, 1, raw)
        return
    bind(turn=inbound.id)
    if r.exists(K.TURN_DONE + inbound.id):
        r.lrem(K.PROCESSING + conv, 1, raw)  # answered before a crash: don't answer twice
        return

    session = load_session(r, conv)
    with _typing(r, inbound, lock):
        outgoing = _respond(ctx, inbound, session)
    numbered = [number(r, o, settings.session_ttl_s) for o in outgoing if o.replies]

    pipe = r.pipeline(transaction=True)
    for out in numbered:
        pipe.xadd(K.REPLY_STREAM, stream_fields(out))  # type: ignore[arg-type]
    pipe.set(K.TURN_DONE + inbound.id, 1, ex=DONE_TTL_S)
    pipe.set(session_key(conv), dump_session(session), ex=settings.session_ttl_s)
    pipe.lrem(K.PROCESSING + conv, 1, raw)
    pipe.execute()
    people.remember(r, inbound, session, settings.session_ttl_s)  # for `omnigate forget`


def _respond(ctx: WorkerContext, inbound: Inbound, session: Session) -> list[Outbound]:
    """Route the message (bot or agent), run the brain, and update the transcript."""
    settings = ctx.settings
    # The transcript calls the customer "user", as the brain's prompts do.
    author: Literal["agent", "system", "user"] = (
        "user" if inbound.author == "customer" else inbound.author
    )
    routed = handoff.route(inbound, session, settings)
    if routed is not None:
        remember(session, HistoryItem(role=author, text=transcript_text(inbound)), _max(settings))
        return routed

    guard = GuessGuard(ctx.redis, getattr(ctx.brain, "nlu", None))  # the brain's entity finder
    check = guard.before(inbound, session)
    try:
        replies = ctx.brain.respond(Turn(message=inbound, session=session))
    except SoftTimeLimitExceeded:
        log.error("turn of %s ran past its time limit", inbound.conversation_key)
        replies = [Reply(text=APOLOGY)]
    except Exception:
        log.exception("the brain failed on a turn of %s", inbound.conversation_key)
        replies = [Reply(text=APOLOGY)]
    guard.after(inbound, session, check)
    remember(session, HistoryItem(role="user", text=transcript_text(inbound)), _max(settings))
    extra = handoff.after_brain(inbound, session, replies, settings, schedule)
    for reply in replies:
        remember(session, HistoryItem(role="bot", text=reply.text), _max(settings))
    customer = Outbound(
        channel=inbound.channel,
        conversation=inbound.conversation,
        user=inbound.user,
        replies=tuple(replies),
        meta=dict(inbound.meta),
        in_reply_to=inbound.id,
    )
    return [customer, *extra]


def _max(settings: Settings) -> int:
    return settings.history_turns * 2


class _typing:
    """While a turn runs: a typing event at its start and every few seconds, and the
    conversation lock kept alive."""

    def __init__(self, r: redis.Redis, inbound: Inbound, lock: Lock) -> None:
        self._r = r
        self._lock = lock
        self._fields = typing_fields(inbound.channel, inbound.conversation, dict(inbound.meta))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # Quick turns show no indicator: it would only flicker before the reply.
        if self._stop.wait(TYPING_AFTER_S):
            return
        while True:
            try:
                self._r.xadd(K.REPLY_STREAM, self._fields)  # type: ignore[arg-type]
                self._lock.reacquire()
            except (redis.RedisError, LockError):
                log.warning("typing/lock refresh failed for a turn", exc_info=True)
            if self._stop.wait(TYPING_EVERY_S):
                return

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- per-process start-up --------------------------------------------------------------------


def sweep(r: redis.Redis) -> int:
    """Enqueue a turn for every conversation with waiting messages and no lock holder: a
    worker killed mid-turn, or a gateway that died between queueing and enqueueing. Returns
    how many conversations it woke."""
    woken = 0
    for raw in r.sscan_iter(K.ACTIVE, count=500):
        conv = raw.decode()
        if not r.exists(K.LOCK + conv):
            app.send_task(K.TASK_TURN, args=[conv])
            woken += 1
    return woken


def _heartbeat(name: str) -> None:
    """Tell the gateways this process is alive; now and then, wake stranded conversations."""
    r = worker_context().redis
    last_sweep = 0.0
    while True:
        try:
            now = time.time()
            pipe = r.pipeline(transaction=False)
            pipe.zadd(K.WORKERS, {name: now})
            pipe.zremrangebyscore(K.WORKERS, "-inf", now - 4 * K.WORKER_ALIVE_S)
            pipe.execute()
            if time.monotonic() - last_sweep >= SWEEP_EVERY_S:
                last_sweep = time.monotonic()
                if woken := sweep(r):
                    log.info("woke %d conversation(s) with waiting messages", woken)
        except redis.RedisError:
            log.warning("worker heartbeat: Redis unreachable")
        threading.Event().wait(5)


def _start_process() -> None:
    """Build the context (the brain, every model) before the first task, then tell the gateways
    this process is ready."""
    worker_context()
    name = f"{socket.gethostname()}:{os.getpid()}"
    threading.Thread(target=_heartbeat, args=(name,), daemon=True, name="heartbeat").start()


@signals.worker_process_init.connect
def _on_child_start(**_: object) -> None:
    forget_context()  # never share a connection across fork
    _start_process()


@signals.worker_ready.connect
def _on_worker_ready(sender: object = None, **_: object) -> None:
    pool = type(getattr(sender, "pool", None)).__module__
    if "prefork" not in pool:
        _start_process()  # solo and threads pools run tasks in this process
