"""The turn task. A message waits in its conversation's inbox; ``turn`` takes the oldest one,
holding the conversation lock, answers it, and writes the replies to the reply stream.

Ordering: the gateway appends each message to ``og:inbox:<conv>`` and queues a ``turn`` task for
the conversation unless one is queued already (``og:scheduled:<conv>``). A task that cannot take
the lock returns at once — the lock holder queues another task after its turn while the inbox is
not empty — so messages of one conversation are answered one at a time and in the order they
came, on any number of workers.

Crash safety: the message being answered sits in ``og:processing:<conv>`` until the replies,
the session and a done-marker are written by one script, which writes only while this turn's
lock token still holds (``workers.turn_store``). A turn that stalled past the lock TTL and was
taken over therefore commits nothing; a redelivered turn finds the message there and, if it was
answered already, does not answer it twice. Every take counts an attempt: a message that kills
or outlasts its worker ``turn_max_attempts`` times gets an apology and goes to the dead letters.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from celery import signals

from brain.generation_grounded import delta_sink
from brain.types import HistoryItem, Session, Turn
from channels import constants as K
from channels.log_ids import bind
from channels.schema import Inbound, Outbound, Reply, Unreadable, parse_stored
from gateway import dead_letters
from gateway.enqueue import SCHEDULED_TTL_S
from gateway.settings import Settings
from workers import feedback, people, records, satisfaction
from workers.celery_app import app
from workers.context import WorkerContext, forget_context, worker_context
from workers.guessing import GuessGuard
from workers.handoff import state as handoff
from workers.handoff.announce import announce
from workers.handoff.timeout import schedule as schedule_timeout
from workers.memory import dump_session, load_session, remember, transcript_text
from workers.outgoing import Previews, typing_fields, unnumbered
from workers.turn_store import (
    ANSWERED_BEFORE,
    COMMITTED,
    NOT_OURS,
    Batch,
    ConversationLock,
    Taken,
    commit,
    take,
)
from workers.watchdog import LockLost, TurnTimedOut, run_guarded

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. Please try again in a moment."
HEARTBEAT_EVERY_S = 5.0

# Forget a conversation in the active set once nothing of it waits (atomic with the check).
# 1 when nothing waits, whether or not the set still held it: after a Redis restart that lost
# its last second of writes the member can be gone already, and answering 0 then would make
# every turn schedule the next one forever.
_RETIRE = """
if redis.call('LLEN', KEYS[1]) == 0 and redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[1])
  return 1
end
return 0
"""

# KEYS: lock and scheduled key of each conversation, in pairs. ARGV: scheduled ttl.
# Returns the 1-based pair indexes of the conversations nobody works on, now marked scheduled.
_SWEEP = """
local woken = {}
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 0
     and redis.call('SET', KEYS[i + 1], 1, 'NX', 'EX', tonumber(ARGV[1])) then
    table.insert(woken, (i + 1) / 2)
  end
end
return woken
"""


def schedule(r: redis.Redis, conv: str) -> None:
    """Queue a turn of ``conv`` unless one is queued already."""
    if r.set(K.SCHEDULED + conv, 1, nx=True, ex=SCHEDULED_TTL_S):
        app.send_task(K.TASK_TURN, args=[conv])


@app.task(name=K.TASK_TURN, acks_late=True)
def turn(conv: str) -> None:
    """Answer the oldest waiting message of conversation ``conv`` (``channel:conversation``)."""
    ctx = worker_context()
    r = ctx.redis
    # From here on a new message needs a new task: this one may find the lock taken.
    r.delete(K.SCHEDULED + conv)
    lock = ConversationLock(r, conv, ctx.settings.lock_ttl_s)
    if not lock.acquire():
        return  # the holder chains the next turn
    try:
        _answer_next(ctx, conv, lock)
    finally:
        try:
            lock.release()
        except redis.RedisError:
            log.warning("could not release the lock of %s; it expires by itself", conv)
    # After releasing: a message pushed while we held the lock found it taken, so it is ours.
    keys = [K.INBOX + conv, K.PROCESSING + conv, K.ACTIVE]
    if not r.eval(_RETIRE, 3, *keys, conv):
        schedule(r, conv)


def _answer_next(ctx: WorkerContext, conv: str, lock: ConversationLock) -> None:
    r, settings = ctx.redis, ctx.settings
    taken = take(lock, conv)
    if not isinstance(taken, Taken):
        return  # nothing waits, or the lock is already gone
    try:
        inbound = parse_stored(Inbound, taken.raw)
    except Unreadable as exc:
        log.error("a stored message of %s is unreadable; it goes to the dead letters", conv)
        unreadable = dead_letters.entry("message", conv, f"unreadable: {exc}", taken.raw)
        _commit(lock, conv, taken.raw, None, None, settings, [], unreadable)
        return
    bind(turn=inbound.id)
    done_key = K.TURN_DONE + inbound.id
    if r.exists(done_key):  # answered before a crash: don't answer twice
        _commit(lock, conv, taken.raw, done_key, None, settings, [], None)
        return

    letter: str | None = None
    tokens_before: int | None = None
    if taken.attempts > settings.turn_max_attempts:
        tries = taken.attempts - 1
        log.error("giving up on a message of %s after %d attempts", conv, tries)
        letter = dead_letters.entry(
            "message",
            conv,
            f"gave up after {tries} attempts (each killed its worker or ran out of time)",
            taken.raw,
        )
        session = load_session(r, conv)
        outgoing = _apology(inbound, session, settings)
    else:
        session = load_session(r, conv)
        tokens_before = records.tokens_generated(ctx.brain)
        fields = typing_fields(inbound.channel, inbound.conversation, dict(inbound.meta))
        # Each take has its own preview: a turn run again after a crash streams anew.
        previews = Previews(r, inbound, f"{inbound.id}-{taken.attempts}")

        def typing() -> None:
            if not previews.shown:  # once the reply grows on screen, "typing…" only covers it
                r.xadd(K.REPLY_STREAM, fields)  # type: ignore[arg-type]

        try:
            outgoing = run_guarded(
                lambda: _respond(ctx, inbound, session, previews),
                limit_s=settings.turn_time_limit_s,
                lock=lock,
                typing=typing,
            )
        except LockLost:
            log.warning("turn of %s lost its lock mid-turn; it stops without a reply", conv)
            return
        except TurnTimedOut:
            log.error("turn of %s ran past its time limit; the customer gets an apology", conv)
            session = load_session(r, conv)  # the abandoned work may still touch the old one
            outgoing = _apology(inbound, session, settings)
        finally:
            previews.close()
        outgoing = previews.mark(outgoing)  # the checked reply replaces what streamed
    batches = [Batch(o.conversation_key, len(o.replies), unnumbered(o)) for o in outgoing]
    done = _commit(
        lock, conv, taken.raw, done_key, dump_session(session), settings, batches, letter
    )
    if done == COMMITTED:
        people.remember(r, inbound, session, settings.session_ttl_s)  # for `omnigate forget`
        announce(r, conv, session)
        tokens = records.tokens_used(tokens_before, records.tokens_generated(ctx.brain))
        seconds = (datetime.now(UTC) - inbound.received_at).total_seconds()
        record = records.after_commit(r, inbound, session, outgoing, tokens, seconds, settings)
        feedback.after_commit(r, inbound, session, record, settings)  # for `omnigate learn`


def _commit(
    lock: ConversationLock,
    conv: str,
    raw: bytes,
    done_key: str | None,
    session: str | None,
    settings: Settings,
    batches: list[Batch],
    letter: str | None,
) -> int:
    result = commit(
        lock,
        conv,
        raw,
        done_key=done_key,
        session=session,
        session_ttl_s=settings.session_ttl_s,
        batches=[b for b in batches if b.count],
        dead_letter=letter,
        dead_letter_keep=dead_letters.KEEP,
    )
    if result == NOT_OURS:
        log.warning("turn of %s lost its lock before its commit; it stops without a reply", conv)
    elif result == ANSWERED_BEFORE:
        log.info("a message of %s was answered by an earlier turn", conv)
    return result


def _apology(inbound: Inbound, session: Session, settings: Settings) -> list[Outbound]:
    remember(session, HistoryItem(role="user", text=transcript_text(inbound)), _max(settings))
    remember(session, HistoryItem(role="bot", text=APOLOGY), _max(settings))
    return [_to_customer(inbound, [Reply(text=APOLOGY)])]


def _respond(
    ctx: WorkerContext, inbound: Inbound, session: Session, previews: Previews | None = None
) -> list[Outbound]:
    """Route the message (bot or agent), run the brain (its checked clauses streaming to
    ``previews`` as they are generated), and update the transcript."""
    settings = ctx.settings
    # The transcript calls the customer "user", as the brain's prompts do.
    author: Literal["agent", "system", "user"] = (
        "user" if inbound.author == "customer" else inbound.author
    )
    session.last_intent = None  # the brain sets it when it answers this turn
    answered = satisfaction.answer(ctx.redis, inbound, session)
    if answered is not None:  # the satisfaction answer or the quiet-period question
        return answered
    routed = handoff.route(inbound, session, settings)
    if routed is not None:
        remember(session, HistoryItem(role=author, text=transcript_text(inbound)), _max(settings))
        if satisfaction.ended(ctx.redis, inbound, session):
            routed.append(satisfaction.question_after(inbound, session))
        return routed

    guard = GuessGuard(ctx.redis, getattr(ctx.brain, "nlu", None))  # the brain's entity finder
    check = guard.before(inbound, session)
    sink = delta_sink.set(previews)
    try:
        replies = ctx.brain.respond(Turn(message=inbound, session=session))
    except Exception:
        log.exception("the brain failed on a turn of %s", inbound.conversation_key)
        replies = [Reply(text=APOLOGY)]
    finally:
        delta_sink.reset(sink)
    guard.after(inbound, session, check)
    remember(session, HistoryItem(role="user", text=transcript_text(inbound)), _max(settings))
    extra = handoff.after_brain(inbound, session, replies, settings, schedule_timeout)
    for reply in replies:
        remember(session, HistoryItem(role="bot", text=reply.text), _max(settings))
    if satisfaction.ended(ctx.redis, inbound, session):
        replies.append(satisfaction.ASK)
    return [_to_customer(inbound, replies), *extra]


def _to_customer(inbound: Inbound, replies: list[Reply]) -> Outbound:
    return Outbound(
        channel=inbound.channel,
        conversation=inbound.conversation,
        user=inbound.user,
        replies=tuple(replies),
        meta=dict(inbound.meta),
        in_reply_to=inbound.id,
    )


def _max(settings: Settings) -> int:
    return settings.history_turns * 2


# --- per-process start-up --------------------------------------------------------------------


def sweep(r: redis.Redis) -> int:
    """Queue a turn for every conversation with waiting messages, no lock holder and no turn
    queued: a worker killed mid-turn, a turn that lost its task, a broker that was away when the
    gateway stored a message. Returns how many conversations it woke."""
    woken = 0
    batch: list[str] = []
    for raw in r.sscan_iter(K.ACTIVE, count=500):
        batch.append(raw.decode())
        if len(batch) == 500:
            woken += _wake(r, batch)
            batch = []
    return woken + (_wake(r, batch) if batch else 0)


def _wake(r: redis.Redis, convs: list[str]) -> int:
    keys = [k for conv in convs for k in (K.LOCK + conv, K.SCHEDULED + conv)]
    woken: Any = r.eval(_SWEEP, len(keys), *keys, SCHEDULED_TTL_S)
    for index in woken:
        app.send_task(K.TASK_TURN, args=[convs[int(index) - 1]])
    return len(woken)


def _heartbeat(name: str) -> None:
    """Tell the gateways this process is alive; now and then, wake stranded conversations."""
    ctx = worker_context()
    r = ctx.redis
    every = ctx.settings.sweep_every_s
    last_beat = last_sweep = 0.0
    while True:
        try:
            if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
                last_beat = time.monotonic()
                now = time.time()
                pipe = r.pipeline(transaction=False)
                pipe.zadd(K.WORKERS, {name: now})
                pipe.zremrangebyscore(K.WORKERS, "-inf", now - 4 * K.WORKER_ALIVE_S)
                pipe.execute()
            if time.monotonic() - last_sweep >= every:
                last_sweep = time.monotonic()
                if woken := sweep(r):
                    log.info("woke %d conversation(s) with waiting messages", woken)
                if asked := satisfaction.queue_quiet_notices(r, ctx.settings):
                    log.info("%d conversation(s) went quiet", asked)
        except redis.RedisError:
            log.warning("worker heartbeat: Redis unreachable")
        except Exception:  # the broker's errors are many: the next sweep tries again
            log.exception("worker sweep failed")
        threading.Event().wait(min(every, HEARTBEAT_EVERY_S))


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
