"""Which (division, topic) pairs we track: the `subscriptions` table held in memory, so no request reads the database.

Two ways the set is reloaded, both off the usual path of a request:

* `run()` (a background task of the lifespan) reloads it every `interval` seconds, so a removed subscription
  stops being tracked within that time.
* A miss (a signed event for a pair not in the set) waits for a reload that *started after the request arrived*,
  so an event for a pair registered a moment ago is never dropped as untracked. Misses share reloads and reloads
  are at least `min_gap` seconds apart, so a stream of events for pairs we do not track (Exact keeps sending after
  we removed ours) costs at most one query per `min_gap`, however many arrive.

If the database cannot be read on a miss we cannot tell whether the event matters: `TrackingUnavailable`, which the
route answers with 503 so that Exact delivers again later.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from runtime.logging import log_event
from subscriptions.queries import tracked_pairs

__all__ = ["TrackedPairs", "TrackingUnavailable"]

log = logging.getLogger("receiver")
Pair = tuple[int, str]


class TrackingUnavailable(Exception):
    """The subscriptions table could not be read, so a miss cannot be decided."""


class TrackedPairs:
    """The pairs of every subscription not removed (`subscriptions.queries.tracked_pairs`); topics compare
    case-insensitively.

    Usage:
        tracked = TrackedPairs(engine)
        await tracked.refresh()
        task = asyncio.create_task(tracked.run())
        if await tracked.tracks(441609, "SalesOrders"): ...
    """

    def __init__(self, engine: Engine, *, interval: float = 5.0, min_gap: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self._min_gap = min_gap
        self._pairs: frozenset[Pair] = frozenset()
        self._loaded_from = float("-inf")  # monotonic start of the last reload that succeeded
        self._attempted_at = float("-inf")  # monotonic start of the last reload, failed or not
        self._lock = asyncio.Lock()

    async def tracks(self, division: int, topic: str) -> bool:
        pair = (division, topic.lower())
        if pair in self._pairs:
            return True
        await self._reload_since(time.monotonic())
        return pair in self._pairs

    async def refresh(self) -> None:
        """Reload now; raises `TrackingUnavailable` when the database cannot be read."""
        async with self._lock:
            await self._reload()

    async def run(self) -> None:
        """Reload every `interval` seconds until cancelled; a failed reload keeps the last good set."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except TrackingUnavailable as exc:
                log_event(log, "receiver.tracking_unavailable", logging.WARNING, error=str(exc))

    async def _reload_since(self, arrived: float) -> None:
        async with self._lock:
            if self._loaded_from >= arrived:
                return  # a reload that began after this request arrived has finished while we waited
            wait = self._attempted_at + self._min_gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._reload()

    async def _reload(self) -> None:
        started = self._attempted_at = time.monotonic()
        self._pairs = await run_in_threadpool(self._load)
        self._loaded_from = started

    def _load(self) -> frozenset[Pair]:
        try:
            with self._engine.connect() as conn:
                return tracked_pairs(conn)
        except SQLAlchemyError as exc:
            raise TrackingUnavailable(type(exc).__name__) from exc
