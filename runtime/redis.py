"""Redis connections and the key prefix every process shares."""

from __future__ import annotations

import redis
import redis.asyncio

__all__ = ["async_client", "clear_prefix", "sync_client"]


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)


def async_client(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def clear_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix`; returns how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.delete(*batch)
            batch.clear()
    if batch:
        deleted += client.delete(*batch)
    return deleted
