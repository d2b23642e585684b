"""A Redis lock held by one owner that expires unless refreshed, so a killed holder frees it within one TTL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis

__all__ = ["LaneLock"]

# KEYS: lock. ARGV: owner, ttl ms. The owner may take its own lock again: a redelivered task keeps its id.
_LOCK = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LaneLock:
    """A lock on one lane's cursor, held by `owner`, that expires unless refreshed (a killed holder frees it)."""

    def __init__(self, client: redis.Redis, key: str, owner: str, ttl_seconds: float) -> None:
        self._client, self._key, self.owner = client, key, owner
        self._ttl_ms = int(ttl_seconds * 1000)

    def acquire(self) -> bool:
        return bool(self._client.eval(_LOCK, 1, self._key, self.owner, self._ttl_ms))

    def refresh(self) -> bool:
        return self.acquire()

    def release(self) -> None:
        self._client.eval(_UNLOCK, 1, self._key, self.owner)

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Keep the (acquired) lock for the block: a thread refreshes it every third of its TTL, so a live holder
        keeps it however long a call waits, and a killed one loses it within one TTL."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self._ttl_ms / 3000) and self.refresh():
                pass

        thread = threading.Thread(target=beat, name="lane-lock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
