"""The Redis side of a turn, every step fenced by the conversation lock's token: a turn whose lock
expired (a stall, a Redis hiccup) and was taken by another turn can neither take a message nor
commit a reply, so no message is answered twice.

- ``ConversationLock``: one turn at a time per conversation, with a random token;
- ``take``: the message to answer (the one left in processing by a crash, else the oldest of the
  inbox), and how many turns have taken it;
- ``commit``: the replies (numbered here, so a refused commit leaves no gap in the sequence), the
  memory, the done mark and an optional dead letter, in one script.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis

from channels import constants as K

DONE_TTL_S = 7 * 24 * 3600

_ACQUIRE = "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0"
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lock, processing, inbox, attempts. ARGV: token, attempts ttl.
# Returns false when the lock is not ours; {} when nothing waits; {message, attempts}.
_TAKE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local raw = redis.call('LINDEX', KEYS[2], 0)
if not raw then raw = redis.call('LMOVE', KEYS[3], KEYS[2], 'LEFT', 'RIGHT') end
if not raw then return {} end
local n = redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[2])
return {raw, n}
"""

# KEYS: lock, processing, done, session, stream, attempts, dead letters, then one seq key per
#       reply batch.
# ARGV: token, message, done ttl, session ('' keeps it), session ttl, dead letter ('' none),
#       dead-letter cap, then per batch: reply count, Outbound JSON without first_seq.
# Returns 1 committed, -1 the lock is not ours, -2 the message was answered already.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('LREM', KEYS[2], 1, ARGV[2])
  return -2
end
local ttl = tonumber(ARGV[5])
for i = 8, #ARGV, 2 do
  local seq_key = KEYS[8 + (i - 8) / 2]
  local count = tonumber(ARGV[i])
  local last = redis.call('INCRBY', seq_key, count)
  redis.call('EXPIRE', seq_key, ttl)
  local data = string.sub(ARGV[i + 1], 1, -2) .. ',"first_seq":' .. (last - count + 1) .. '}'
  redis.call('XADD', KEYS[5], '*', 'kind', 'reply', 'data', data)
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], 1, 'EX', tonumber(ARGV[3])) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[4], ARGV[4], 'EX', ttl) end
if ARGV[6] ~= '' then
  redis.call('RPUSH', KEYS[7], ARGV[6])
  redis.call('LTRIM', KEYS[7], -tonumber(ARGV[7]), -1)
end
redis.call('DEL', KEYS[6])
redis.call('LREM', KEYS[2], 1, ARGV[2])
return 1
"""

COMMITTED, NOT_OURS, ANSWERED_BEFORE = 1, -1, -2


class ConversationLock:
    """The lock of one conversation, held by one turn; its token fences every write."""

    def __init__(self, r: redis.Redis, conv: str, ttl_s: int) -> None:
        self.r = r
        self.key = K.LOCK + conv
        self.ttl_ms = ttl_s * 1000
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        """True when this turn now holds the conversation."""
        return bool(self.r.eval(_ACQUIRE, 1, self.key, self.token, self.ttl_ms))

    def renew(self) -> bool:
        """Push the expiry out again; False when the lock is no longer ours."""
        return bool(self.r.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        """Let the next turn in (a lock that is no longer ours is left alone)."""
        self.r.eval(_RELEASE, 1, self.key, self.token)


@dataclass(frozen=True)
class Taken:
    """The message a turn answers, as stored, and how many turns have taken it so far."""

    raw: bytes
    attempts: int


def take(lock: ConversationLock, conv: str) -> Taken | bool | None:
    """The message to answer; None when nothing waits; False when the lock is gone."""
    keys = [lock.key, K.PROCESSING + conv, K.INBOX + conv, K.ATTEMPTS + conv]
    got: Any = lock.r.eval(_TAKE, len(keys), *keys, lock.token, DONE_TTL_S)
    if got is None:
        return False
    if not got:
        return None
    return Taken(raw=got[0], attempts=int(got[1]))


@dataclass(frozen=True)
class Batch:
    """Replies for one conversation: its key and the Outbound JSON without ``first_seq``."""

    conv: str
    count: int
    data: str


def commit(
    lock: ConversationLock,
    conv: str,
    raw: bytes,
    *,
    done_key: str | None,
    session: str | None,
    session_ttl_s: int,
    batches: list[Batch],
    dead_letter: str | None = None,
    dead_letter_keep: int = 10_000,
) -> int:
    """Write the turn's outcome if this turn still holds the conversation: ``COMMITTED``,
    ``NOT_OURS`` or ``ANSWERED_BEFORE``. ``done_key`` None: the message has no identity to
    mark (unreadable), it is only removed."""
    keys = [
        lock.key,
        K.PROCESSING + conv,
        done_key or K.TURN_DONE,
        K.SESSION + conv,
        K.REPLY_STREAM,
        K.ATTEMPTS + conv,
        K.DEAD_LETTERS,
        *(K.SEQ + b.conv for b in batches),
    ]
    args: list[str | int | bytes] = [
        lock.token,
        raw,
        DONE_TTL_S if done_key else "",
        session or "",
        session_ttl_s,
        dead_letter or "",
        dead_letter_keep,
    ]
    for b in batches:
        args += [b.count, b.data]
    return int(lock.r.eval(_COMMIT, len(keys), *keys, *args))
