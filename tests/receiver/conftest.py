"""The receiver under a real uvicorn, a real Redis and a database that tracks division 101's Accounts."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from receiver.app import create_app
from runtime.contracts import EVENTS_QUEUE
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.factories import create_connection, create_subscription


@dataclass
class Receiver:
    url: str
    settings: Settings
    redis: redis.Redis

    def post(self, body: bytes, **headers: str) -> httpx.Response:
        return httpx.post(f"{self.url}/webhooks/exact", content=body, headers=headers, timeout=10)

    def queue(self) -> list[bytes]:
        return cast("list[bytes]", self.redis.lrange(self.settings.redis_prefix + EVENTS_QUEUE, 0, -1))

    def events(self) -> list[dict[str, Any]]:
        """The queued events, decoded from their Celery envelopes: the task's one positional argument."""
        return [json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in self.queue()]


@pytest.fixture(scope="module")
def tracked(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, session.begin():
        connection = create_connection(session)
        for division, topic in ((101, "Accounts"), (441609, "SalesOrders"), (1234567890, "Items")):
            create_subscription(session, connection=connection, division=division, topic=topic)


@pytest.fixture
def receiver(settings: Settings, tracked: None, redis_client: redis.Redis) -> Iterator[Receiver]:
    with ServerThread(create_app(settings)) as server:
        yield Receiver(server.url, settings, redis_client)
