"""Which (division, topic) pairs we track, from the subscriptions table, cached so no request touches the database.

A miss reloads the table unless a reload finished after the request arrived, so an event for a pair registered a
moment ago is never dropped as untracked. Only signed events for untracked pairs take that path, which is rare;
concurrent misses share one reload."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from subscriptions.models import Subscription

__all__ = ["TrackedPairs"]


class TrackedPairs:
    def __init__(self, engine: Engine, *, ttl: float = 30.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._pairs: frozenset[tuple[int, str]] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def _load(self) -> frozenset[tuple[int, str]]:
        query = select(Subscription.division, Subscription.topic).where(Subscription.state != "removed")
        with self._engine.connect() as conn:
            return frozenset((int(d), str(t).lower()) for d, t in conn.execute(query))

    async def refresh(self, *, unless_after: float | None = None) -> None:
        async with self._lock:
            if unless_after is not None and self._loaded_at >= unless_after:
                return  # someone reloaded while we waited for the lock
            started = time.monotonic()
            self._pairs = await run_in_threadpool(self._load)
            self._loaded_at = started

    async def tracks(self, division: int, topic: str) -> bool:
        arrived = time.monotonic()
        if arrived - self._loaded_at > self._ttl:
            await self.refresh(unless_after=arrived)
        pair = (division, topic.lower())
        if pair not in self._pairs:
            await self.refresh(unless_after=arrived)
        return pair in self._pairs
