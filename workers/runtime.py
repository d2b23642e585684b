"""What a worker process builds once: settings, database sessions, Redis, sinks, and Exact clients per connection."""

from __future__ import annotations

from functools import lru_cache

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exact import ExactClient
from exact._models import Connection
from exact.factory import client_from_settings
from runtime.db import make_engine, make_session_factory
from runtime.redis import sync_client
from runtime.settings import Settings, get_settings
from subscriptions.models import Subscription
from workers.sinks import Sink, load_sinks

__all__ = ["client", "connection_for", "redis_client", "sessions", "settings", "sinks"]


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings().database_url))


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return sync_client(settings().redis_url)


@lru_cache(maxsize=1)
def sinks() -> tuple[Sink, ...]:
    return tuple(load_sinks(settings()))


@lru_cache(maxsize=64)
def client(connection_id: int) -> ExactClient:
    return client_from_settings(settings(), sessions(), connection_id)


def connection_for(division: int, topic: str) -> int | None:
    """The connection whose subscription delivers this division and topic: a live one, the newest first."""
    with sessions()() as session:
        query = (
            select(Subscription.connection_id)
            .join(Connection, Connection.id == Subscription.connection_id)
            .where(
                Subscription.division == division,
                Subscription.topic == topic,
                Subscription.state.in_(("active", "pending")),
                Connection.needs_consent.is_(False),
            )
            .order_by(Subscription.id.desc())
        )
        return session.scalars(query).first()
