"""A process's Exact clients and reference caches, one per connection, over the process's shared resources."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Self

import redis
from sqlalchemy.orm import Session, sessionmaker

from connections.apps import ExactApp
from connections.factory import app_of, client_from_settings
from exact import ExactClient, References
from runtime.process import Resources, resources
from runtime.settings import Settings

__all__ = ["ConnectionContext", "connection_context"]


@dataclass
class ConnectionContext:
    """Settings, sessions and Redis, plus an Exact client and a reference cache per connection, built on first use."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis
    _clients: dict[int, ExactClient] = field(default_factory=dict)
    _references: dict[int, References] = field(default_factory=dict)
    _apps: dict[int, ExactApp] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls.from_resources(Resources.from_settings(settings))

    @classmethod
    def from_resources(cls, shared: Resources) -> Self:
        return cls(shared.settings, shared.sessions, shared.redis)

    def client(self, connection_id: int) -> ExactClient:
        with self._lock:
            if connection_id not in self._clients:
                self._clients[connection_id] = client_from_settings(self.settings, self.sessions, connection_id)
            return self._clients[connection_id]

    def app(self, connection_id: int) -> ExactApp:
        """The connection's app, whose client id keys its budgets (a connection never changes app)."""
        with self._lock:
            if connection_id not in self._apps:
                self._apps[connection_id] = app_of(self.settings, self.sessions, connection_id)
            return self._apps[connection_id]

    def references(self, connection_id: int) -> References:
        """One reference cache per connection, kept for the process: the same codes recur across commands."""
        client = self.client(connection_id)
        with self._lock:
            if connection_id not in self._references:
                self._references[connection_id] = References(client, ttl=self.settings.reference_cache_seconds)
            return self._references[connection_id]


@lru_cache(maxsize=1)
def connection_context() -> ConnectionContext:
    """The process's one context, over `runtime.process.resources()`; sync's context shares its clients."""
    return ConnectionContext.from_resources(resources())
