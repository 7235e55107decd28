"""The one way a message enters a conversation: dedupe on its platform id, check the inbound
limits, store it in the conversation's inbox, mark the conversation active, and queue a turn
when none is queued. Ingress runs it for every channel's message (in a thread, under the
gateway's inbound limits), the handoff timeout for its notice (in a worker, without them).

The dedupe mark, the inbox, the active set, the limits and the "scheduled" mark are one Lua
script, so a message is either stored with its mark or not at all: a platform's retry after a
failure is accepted, and a retry after a success is a duplicate. Once stored, the message is the
workers' business: when the broker cannot take the turn task right now, the scheduled mark is
dropped and the workers' sweeper enqueues the turn.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery
from prometheus_client import Counter

from channels import constants as K
from channels.errors import TooMany
from channels.schema import Inbound
from gateway.settings import Settings

log = logging.getLogger(__name__)

REFUSED = Counter("omnigate_inbound_refused_total", "Messages over an inbound limit", ["limit"])

# A turn task queued for a conversation keeps its "scheduled" mark this long at most: if the
# task was lost, the sweeper queues another after that.
SCHEDULED_TTL_S = 60
RATE_WINDOW_S = 60
UNLIMITED = 2**31  # a notice omnigate writes itself is never refused for the customer's pace

# KEYS: dedupe, inbox, active, scheduled, conv rate, address rate ('' = none).
# ARGV: message, message id, dedupe ttl, conv, inbox max, conv limit, address limit, sched ttl,
#       window.
# Returns {1, scheduled (0/1)} stored · {0} duplicate · {-1, ttl} address limit ·
# {-2, ttl} conversation limit · {-3, waiting} inbox full.
# Writes come after every check, SADD first (harmless alone: the sweeper retires an empty
# conversation), so a refused write leaves nothing half-stored; a refused dedupe mark takes the
# message back out.
_ACCEPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local window = tonumber(ARGV[9])
if KEYS[6] ~= '' and tonumber(redis.call('GET', KEYS[6]) or '0') >= tonumber(ARGV[7]) then
  return {-1, redis.call('TTL', KEYS[6])}
end
if tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[6]) then
  return {-2, redis.call('TTL', KEYS[5])}
end
local waiting = redis.call('LLEN', KEYS[2])
if waiting >= tonumber(ARGV[5]) then return {-3, waiting} end
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[1])
local marked = redis.pcall('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
if type(marked) == 'table' and marked.err then
  redis.pcall('RPOP', KEYS[2])
  return redis.error_reply(marked.err)
end
for _, key in ipairs({KEYS[5], KEYS[6]}) do
  if key ~= '' and redis.pcall('INCR', key) == 1 then redis.pcall('EXPIRE', key, window) end
end
local fresh = redis.pcall('SET', KEYS[4], 1, 'NX', 'EX', tonumber(ARGV[8]))
if type(fresh) == 'table' and fresh['ok'] then return {1, 1} end
return {1, 0}
"""


def enqueue(
    r: redis.Redis,
    celery: Celery,
    inbound: Inbound,
    settings: Settings,
    *,
    address: str | None = None,
    limits: bool = True,
) -> bool:
    """Store ``inbound`` for a turn and queue the turn. False when the platform already sent
    this message (a duplicate).

    ``address`` (the client's, for web chat and ``/api/chat``) is counted against the
    per-address limit; ``limits=False`` skips the inbound limits. Raises ``TooMany`` over a
    limit and Redis's errors when it cannot take the message; in both cases nothing is stored,
    so a later retry is accepted.
    """
    keys, args = _accept_call(inbound, address, settings)
    if not limits:
        args[4] = args[5] = args[6] = UNLIMITED
    result: Any = r.eval(_ACCEPT, len(keys), *keys, *args)
    code = int(result[0])
    if code == 0:
        return False
    if code < 0:
        raise refusal(code, int(result[1]), settings)
    if int(result[1]):
        _queue_turn(r, celery, inbound.conversation_key)
    return True


def _queue_turn(r: redis.Redis, celery: Celery, conv: str) -> None:
    """Send the turn task of ``conv``. The message is stored already: if the broker is away,
    the workers' sweeper queues the turn once the scheduled mark is gone, so this never
    fails."""
    try:
        celery.send_task(
            K.TASK_TURN,
            args=[conv],
            queue=K.QUEUE_BRAIN,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
        )
    except Exception as exc:  # the broker's errors are many (kombu, redis, OSError)
        log.warning("turn of %s not queued (%s); the sweeper will queue it", conv, exc)
        try:
            r.delete(K.SCHEDULED + conv)
        except (redis.RedisError, OSError):
            pass


def _accept_call(
    inbound: Inbound, address: str | None, s: Settings
) -> tuple[list[str], list[str | int]]:
    conv = inbound.conversation_key
    keys = [
        K.DEDUPE + inbound.dedupe_key,
        K.INBOX + conv,
        K.ACTIVE,
        K.SCHEDULED + conv,
        K.INBOUND_RATE + "conv:" + conv,
        K.INBOUND_RATE + "addr:" + address if address else "",
    ]
    args: list[str | int] = [
        inbound.model_dump_json(),
        inbound.id,
        s.dedupe_ttl_s,
        conv,
        s.inbox_max,
        s.rate_conversation,
        s.rate_address,
        SCHEDULED_TTL_S,
        RATE_WINDOW_S,
    ]
    return keys, args


def refusal(code: int, value: int, s: Settings) -> TooMany:
    """The error of a refused message (``_ACCEPT``'s negative codes), in plain words."""
    if code == -1:
        REFUSED.labels("address").inc()
        return TooMany(
            f"too many messages from your address: at most {s.rate_address} a minute; "
            f"try again in {max(value, 1)} s",
            max(value, 1),
        )
    if code == -2:
        REFUSED.labels("conversation").inc()
        return TooMany(
            f"too many messages in this conversation: at most {s.rate_conversation} "
            f"messages a minute; try again in {max(value, 1)} s",
            max(value, 1),
        )
    REFUSED.labels("inbox").inc()
    return TooMany(
        f"{value} messages are already waiting for an answer in this conversation; "
        "send this one once they are answered",
        5,
    )
