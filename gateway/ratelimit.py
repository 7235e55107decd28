"""Send-rate limits shared by every gateway replica, kept in Redis.

Each limit is a "next free slot" time per key: taking a slot reserves ``now`` or the next free
time, whichever is later, and moves the next free time on by the interval. The caller sleeps
until its slot. So 1 message/s per chat and ~30/s per bot hold across replicas, and a platform's
``retry_after`` pushes a key's next slot into the future for everyone (``hold``).
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from channels import constants as K

# KEYS[1]: the slot key. ARGV: now_ms, interval_ms. Returns the reserved slot time in ms.
_TAKE = """
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local slot = math.max(nxt, now)
redis.call('SET', KEYS[1], slot + tonumber(ARGV[2]), 'PX', slot - now + tonumber(ARGV[2]) + 60000)
return slot
"""

# KEYS[1]: the slot key. ARGV: until_ms. Pushes the next free slot to at least until_ms.
_HOLD = """
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ms = tonumber(ARGV[1])
if until_ms > nxt then
  redis.call('SET', KEYS[1], until_ms, 'PX', until_ms - tonumber(ARGV[2]) + 60000)
end
return 0
"""


# KEYS: slot keys. ARGV: now_ms, then one interval_ms per key. Takes a slot of every key only
# if each is free now (a send that must not wait: a preview); 1 when taken, else 0.
_TRY = """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > now then return 0 end
end
for i = 1, #KEYS do
  local interval = tonumber(ARGV[i + 1])
  redis.call('SET', KEYS[i], now + interval, 'PX', interval + 60000)
end
return 1
"""


class RateLimiter:
    """Spacing of sends per key, shared through Redis."""

    def __init__(self, r: aioredis.Redis, namespace: str) -> None:
        self._r = r
        self._ns = K.RATE + namespace + ":"
        self._take = r.register_script(_TAKE)
        self._hold = r.register_script(_HOLD)
        self._try = r.register_script(_TRY)

    async def wait(self, key: str, per_second: float) -> None:
        """Sleep until this caller's slot for ``key`` (at most ``per_second`` sends a second)."""
        now_ms = int(time.time() * 1000)
        slot = int(await self._take(keys=[self._ns + key], args=[now_ms, int(1000 / per_second)]))
        delay = (slot - now_ms) / 1000
        if delay > 0:
            await asyncio.sleep(delay)

    async def try_take(self, paces: list[tuple[str, float]]) -> bool:
        """A slot of every ``(key, per_second)`` now, or none: False when any is taken (the
        caller skips its send instead of waiting)."""
        if not paces:
            return True
        now_ms = int(time.time() * 1000)
        keys = [self._ns + key for key, _ in paces]
        args = [now_ms, *(int(1000 / per_s) for _, per_s in paces)]
        return bool(await self._try(keys=keys, args=args))

    async def hold(self, key: str, seconds: float) -> None:
        """No send for ``key`` before ``seconds`` from now (the platform said retry_after)."""
        now_ms = int(time.time() * 1000)
        await self._hold(keys=[self._ns + key], args=[now_ms + int(seconds * 1000), now_ms])
