"""The lane locks of a batch of push lanes, taken, refreshed and released in one Redis call each."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis import Redis

__all__ = ["LaneLocks"]

# The same key and value as `runtime.locks.LaneLock`, so a single-lane holder and a batch exclude each other.
# KEYS: locks. ARGV: owner, ttl ms. Returns 1 per key taken (free, or already ours: a redelivered task), else 0.
_TAKE = """
local taken = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if (not holder) or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    taken[i] = 1
  else
    taken[i] = 0
  end
end
return taken
"""

_FREE = """
local freed = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then freed = freed + redis.call('DEL', key) end
end
return freed
"""


class LaneLocks:
    """Locks on many lanes for one `owner`; `held` lists the keys it holds, `lease_left()` how long they surely last.

    locks = LaneLocks(client, owner, ttl_seconds=60)
    taken = locks.take(keys)       # one call; keys another owner holds are left out
    locks.refresh()                # one call; keys lost meanwhile are dropped from `held`
    locks.release()                # one call
    """

    def __init__(self, client: Redis, owner: str, ttl_seconds: float) -> None:
        self._take, self._free = client.register_script(_TAKE), client.register_script(_FREE)
        self.owner, self.ttl = owner, ttl_seconds
        self.held: list[str] = []
        self._until = 0.0

    def take(self, keys: Sequence[str]) -> list[str]:
        """Take every free key (or ours already); those taken become `held`, with a lease of one TTL."""
        started = time.monotonic()  # the lease counts from before the call: it cannot be longer than that
        flags = self._take(keys=list(keys), args=[self.owner, int(self.ttl * 1000)]) if keys else []
        self.held = [k for k, flag in zip(keys, flags, strict=True) if flag]
        self._until = started + self.ttl
        return list(self.held)

    def refresh(self) -> list[str]:
        """Renew the lease of every held key; returns those lost (another owner took them after they lapsed)."""
        before = self.held
        kept = set(self.take(before))
        return [k for k in before if k not in kept]

    def lease_left(self) -> float:
        """Seconds every held key is surely still ours."""
        return self._until - time.monotonic()

    def release(self) -> None:
        if self.held:
            self._free(keys=self.held, args=[self.owner])
        self.held = []
