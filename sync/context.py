"""What fetching keeps per process on top of the connection context: coalescer, cursors, the lanes it tracks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from connections.context import ConnectionContext, connection_context
from subscriptions.queries import live_lanes
from sync.coalesce import Coalescer, Lane
from sync.cursors import CursorStore
from sync.delta_sync import LaneSync, Progress
from sync.reading import topic_fields

__all__ = ["WorkerContext", "process_context"]

# How long the (division, topic) → connection map is trusted before it is read again; a miss reloads at once.
SUBSCRIPTIONS_TTL_SECONDS = 30.0


@dataclass
class WorkerContext(ConnectionContext):
    """The connection context plus what fetching keeps per process: the coalescer, cursors, the lanes map."""

    _lanes: dict[tuple[int, str], int] = field(default_factory=dict)
    _loaded_at: float = float("-inf")

    def __post_init__(self) -> None:
        # A TOPIC_FIELDS typo stops the worker here, naming it, instead of failing every read of the topic.
        topic_fields(self.settings)

    @cached_property
    def coalescer(self) -> Coalescer:
        settings = self.settings
        return Coalescer(
            self.redis,
            settings.redis_prefix,
            window_seconds=settings.coalesce_window_seconds,
            adaptive=settings.coalesce_adaptive,
        )

    @cached_property
    def cursors(self) -> CursorStore:
        return CursorStore(self.sessions)

    def lane_sync(self, lane: Lane, *, on_page: Progress | None = None) -> LaneSync:
        return LaneSync(
            self.settings, self.sessions, self.client(lane.connection_id), self.cursors, self.coalescer, lane, on_page
        )

    def connection_for(self, division: int, topic: str) -> int | None:
        """The connection whose live subscription covers this division and topic (None: no lane takes it)."""
        wanted = (division, topic.lower())
        if time.monotonic() - self._loaded_at > SUBSCRIPTIONS_TTL_SECONDS or wanted not in self._lanes:
            self._load()
        return self._lanes.get(wanted)

    def _load(self) -> None:
        with self.sessions() as session:
            self._lanes = live_lanes(session)
        self._loaded_at = time.monotonic()


@lru_cache(maxsize=1)
def process_context() -> WorkerContext:
    """The worker process's context: the same sessions, Redis and Exact clients as `connection_context()`."""
    base = connection_context()
    return WorkerContext(
        base.settings, base.sessions, base.redis, _clients=base._clients, _references=base._references, _lock=base._lock
    )
