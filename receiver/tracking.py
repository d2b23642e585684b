"""Which (division, topic) pairs we track, from the subscriptions table, cached so no request touches the database."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from subscriptions.models import Subscription

__all__ = ["TrackedPairs"]


class TrackedPairs:
    """Refreshed every `ttl` seconds, and on a miss at most once a second, so a new subscription is seen at once."""

    def __init__(self, engine: Engine, *, ttl: float = 10.0, miss_interval: float = 1.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._miss_interval = miss_interval
        self._pairs: frozenset[tuple[int, str]] = frozenset()
        self._loaded_at = float("-inf")

    def _load(self) -> frozenset[tuple[int, str]]:
        query = select(Subscription.division, Subscription.topic).where(Subscription.state != "removed")
        with self._engine.connect() as conn:
            return frozenset((int(d), str(t).lower()) for d, t in conn.execute(query))

    async def refresh(self) -> None:
        self._pairs = await run_in_threadpool(self._load)
        self._loaded_at = time.monotonic()

    async def tracks(self, division: int, topic: str) -> bool:
        age = time.monotonic() - self._loaded_at
        if age > self._ttl:
            await self.refresh()
        pair = (division, topic.lower())
        if pair not in self._pairs and age > self._miss_interval:
            await self.refresh()
        return pair in self._pairs
