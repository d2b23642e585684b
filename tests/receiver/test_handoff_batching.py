"""Group commit: webhooks handed on together share one Redis round trip, and each still gets its own answer."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis
import redis.asyncio

from receiver.handoff import Handoff, HandoffFailed
from runtime.contracts import EVENTS_QUEUE
from runtime.settings import Settings
from tests.conftest import REDIS_URL


def _event(event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "division": 101,
        "topic": "Accounts",
        "key": str(uuid.uuid4()),
        "action": "Update",
        "event_created_on": "2026-11-23T00:00:00.000",
        "client_id": "c",
        "received_at": time.time(),
    }


async def _submit_all(settings: Settings, ids: list[str]) -> list[bool]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        handoff = Handoff(client, prefix=settings.redis_prefix, dedupe_seconds=60)
        return list(await asyncio.gather(*(handoff.submit(_event(i)) for i in ids)))
    finally:
        await client.aclose()


def test_concurrent_events_are_enqueued_once_each(settings: Settings, redis_client: redis.Redis) -> None:
    ids = [uuid.uuid4().hex for _ in range(300)]
    # Every event twice, in one burst: the second of each pair lands in the same or a later batch.
    results = asyncio.run(_submit_all(settings, ids + ids))
    assert results[:300] == [True] * 300
    assert results[300:] == [False] * 300
    assert redis_client.llen(settings.redis_prefix + EVENTS_QUEUE) == 300


def test_a_batch_against_an_unreachable_redis_fails_every_event(settings: Settings) -> None:
    async def run() -> list[BaseException | bool]:
        client = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
        handoff = Handoff(client, prefix=settings.redis_prefix, dedupe_seconds=60)
        try:
            return list(
                await asyncio.gather(
                    *(handoff.submit(_event(uuid.uuid4().hex)) for _ in range(5)), return_exceptions=True
                )
            )
        finally:
            await client.aclose()

    results = asyncio.run(run())
    assert len(results) == 5
    for result in results:
        assert isinstance(result, HandoffFailed)


@pytest.mark.parametrize("count", [1, 2])
def test_small_batches(settings: Settings, redis_client: redis.Redis, count: int) -> None:
    ids = [uuid.uuid4().hex for _ in range(count)]
    assert asyncio.run(_submit_all(settings, ids)) == [True] * count
    assert redis_client.llen(settings.redis_prefix + EVENTS_QUEUE) == count
