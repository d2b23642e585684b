"""What one process builds once and every part of it shares: the settings, one engine's sessions, one Redis client."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import redis
from sqlalchemy.orm import Session, sessionmaker

from runtime.db import make_engine, make_session_factory
from runtime.redis import sync_client
from runtime.settings import Settings, get_settings

__all__ = ["Resources", "resources"]


@dataclass(frozen=True)
class Resources:
    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis

    @classmethod
    def from_settings(cls, settings: Settings) -> Resources:
        return cls(settings, make_session_factory(make_engine(settings.database_url)), sync_client(settings.redis_url))


@lru_cache(maxsize=1)
def resources() -> Resources:
    """The process's resources, from the environment; built lazily, after Celery forked its children (an engine's
    pooled connections must not cross a fork)."""
    return Resources.from_settings(get_settings())
