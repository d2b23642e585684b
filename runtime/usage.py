"""Exact calls per app and division in minute buckets, kept in Redis for a day: the console's call chart."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis

from runtime.metrics import exact_call_labels

__all__ = ["CallCounts", "call_counts", "call_recorder", "record_call"]

# A day and an hour: the day chart's oldest hour is still whole when it is drawn.
KEEP_SECONDS = 25 * 3600


@dataclass(frozen=True)
class CallCounts:
    """Calls of one app and division: the last 60 minutes and the last 24 hours, oldest first, the current last."""

    minutes: list[int]
    hours: list[int]
    ends_at: float  # epoch seconds the counts were read at


def _key(prefix: str, client_id: str, division: int | None, hour: int) -> str:
    return f"{prefix}usage:{client_id}:{division if division is not None else '-'}:{hour}"


def record_call(
    client: redis.Redis, *, prefix: str, client_id: str, division: int | None, now: float | None = None
) -> None:
    """Count one call in its minute: one hash per hour, a field per minute of it."""
    moment = time.time() if now is None else now
    key = _key(prefix, client_id, division, int(moment // 3600))
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(key, str(int(moment % 3600 // 60)), 1)
    pipe.expire(key, KEEP_SECONDS)
    pipe.execute()


def call_recorder(client: redis.Redis, *, prefix: str, client_id: str) -> Callable[[httpx.Response], None]:
    """An httpx response hook counting each answered `/api/v1` call of one app in its division's minute."""

    def record(response: httpx.Response) -> None:
        labels = exact_call_labels(response.request.url)
        if labels is not None:
            division = None if labels[0] == "none" else int(labels[0])
            record_call(client, prefix=prefix, client_id=client_id, division=division)

    return record


def call_counts(
    client: redis.Redis, *, prefix: str, client_id: str, division: int | None, now: float | None = None
) -> CallCounts:
    """What `record_call` counted over the last hour (per minute) and the last day (per hour)."""
    moment = time.time() if now is None else now
    hour = int(moment // 3600)
    pipe = client.pipeline(transaction=False)
    for h in range(hour - 24, hour + 1):
        pipe.hgetall(_key(prefix, client_id, division, h))
    buckets: dict[int, dict[int, int]] = {}
    for h, fields in zip(range(hour - 24, hour + 1), pipe.execute(), strict=True):
        buckets[h] = {int(k): int(v) for k, v in fields.items()}
    minute_now = hour * 60 + int(moment % 3600 // 60)
    minutes = [buckets.get(m // 60, {}).get(m % 60, 0) for m in range(minute_now - 59, minute_now + 1)]
    hours = [sum(buckets[h].values()) for h in range(hour - 23, hour + 1)]
    return CallCounts(minutes, hours, moment)
