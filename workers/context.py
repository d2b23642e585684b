"""What a fetching worker builds once per process: database sessions, Redis, cursors, Exact clients, subscriptions."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exact import Connection, ExactClient, References
from exact.factory import client_from_settings
from runtime.db import make_engine, make_session_factory
from runtime.redis import sync_client
from runtime.settings import Settings, get_settings
from subscriptions.models import Subscription
from workers.coalesce import Coalescer, Lane
from workers.cursors import CursorStore
from workers.delta_sync import LaneSync, Progress

__all__ = ["WorkerContext", "process_context"]

# How long the (division, topic) → connection map is trusted before it is read again; a miss reloads at once.
SUBSCRIPTIONS_TTL_SECONDS = 30.0


@dataclass
class WorkerContext:
    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis
    _clients: dict[int, ExactClient] = field(default_factory=dict)
    _references: dict[int, References] = field(default_factory=dict)
    _lanes: dict[tuple[int, str], int] = field(default_factory=dict)
    _loaded_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerContext:
        sessions = make_session_factory(make_engine(settings.database_url))
        return cls(settings, sessions, sync_client(settings.redis_url))

    @cached_property
    def coalescer(self) -> Coalescer:
        return Coalescer(self.redis, self.settings.redis_prefix, window_seconds=self.settings.coalesce_window_seconds)

    @cached_property
    def cursors(self) -> CursorStore:
        return CursorStore(self.sessions)

    def client(self, connection_id: int) -> ExactClient:
        with self._lock:
            if connection_id not in self._clients:
                self._clients[connection_id] = client_from_settings(self.settings, self.sessions, connection_id)
            return self._clients[connection_id]

    def references(self, connection_id: int) -> References:
        """One reference cache per connection, kept for the process: the same codes recur across commands."""
        client = self.client(connection_id)
        with self._lock:
            if connection_id not in self._references:
                self._references[connection_id] = References(client, ttl=self.settings.reference_cache_seconds)
            return self._references[connection_id]

    def lane_sync(self, lane: Lane, *, on_page: Progress | None = None) -> LaneSync:
        return LaneSync(
            self.settings, self.sessions, self.client(lane.connection_id), self.cursors, self.coalescer, lane, on_page
        )

    def connection_for(self, division: int, topic: str) -> int | None:
        """The connection whose subscription covers this division and topic (None: we do not track it)."""
        wanted = (division, topic.lower())
        if time.monotonic() - self._loaded_at > SUBSCRIPTIONS_TTL_SECONDS or wanted not in self._lanes:
            self._load()
        return self._lanes.get(wanted)

    def _load(self) -> None:
        query = (
            select(Subscription.division, Subscription.topic, Subscription.connection_id)
            .join(Connection, Connection.id == Subscription.connection_id)
            .where(Subscription.state.in_(("active", "pending")), Connection.needs_consent.is_(False))
            .order_by(Subscription.id)
        )
        with self.sessions() as session:
            rows = session.execute(query).all()
        # When two connections cover one pair (two users of one company), the newest subscription wins.
        self._lanes = {(int(d), str(t).lower()): int(c) for d, t, c in rows}
        self._loaded_at = time.monotonic()


@lru_cache(maxsize=1)
def process_context() -> WorkerContext:
    """The worker process's context, from the environment (built lazily, after Celery forked its children)."""
    return WorkerContext.from_settings(get_settings())
