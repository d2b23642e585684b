"""A lane's lock is kept alive by a live holder however long it runs, and lapses within one TTL once it is gone.

The SIGKILL stream test (tests/workers/test_kill_stream.py) lost a killed holder's redelivered message (SIGKILL
between kombu's BRPOP and its unacked write), and the lane waited out the lock's TTL, then 300 s; kept alive by a
thread, the TTL is 30 s.
"""

from __future__ import annotations

import time

import redis

from runtime.locks import LaneLock
from runtime.settings import Settings
from sync.tasks import LANE_LOCK_TTL_SECONDS
from tests.pipeline.push_support import await_true


def test_a_kept_lock_outlives_its_ttl_and_lapses_once_its_holder_stops(
    settings: Settings, redis_client: redis.Redis
) -> None:
    key = f"{settings.redis_prefix}lane:test:lock"
    holder, other = LaneLock(redis_client, key, "holder", 0.6), LaneLock(redis_client, key, "other", 0.6)
    assert holder.acquire()
    with holder.kept():
        time.sleep(1.5)  # two and a half TTLs of one long call
        assert not other.acquire()
    # The block is over and nobody released it (a killed holder): it lapses within one TTL.
    await_true(other.acquire, timeout=5, what="the lock lapsing")
    assert redis_client.get(key) == b"other"
    assert LANE_LOCK_TTL_SECONDS <= 30
