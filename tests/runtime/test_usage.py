"""Calls per minute in Redis (runtime/usage.py): counted in their minute and hour, read back for the charts."""

from __future__ import annotations

import httpx
import redis

from runtime.settings import Settings
from runtime.usage import KEEP_SECONDS, call_counts, record_call
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected

NOON = 1_796_400_000.0  # a whole hour: 2026-12-04T12:00:00Z


def test_calls_land_in_their_minute_and_hour_per_app_and_division(
    settings: Settings, redis_client: redis.Redis
) -> None:
    where = {"prefix": settings.redis_prefix, "client_id": "app-1"}
    for moment in (NOON - 3600 * 5, NOON - 120, NOON - 61, NOON - 59, NOON + 30, NOON + 31):
        record_call(redis_client, division=101, now=moment, **where)
    record_call(redis_client, division=202, now=NOON, **where)
    record_call(redis_client, prefix=settings.redis_prefix, client_id="app-2", division=101, now=NOON)

    counts = call_counts(redis_client, division=101, now=NOON + 40, **where)
    assert len(counts.minutes) == 60
    assert len(counts.hours) == 24
    assert counts.minutes[-1] == 2  # 12:00
    assert counts.minutes[-2] == 1  # 11:59 (NOON - 59 s)
    assert counts.minutes[-3] == 2  # 11:58 (NOON - 120 s and NOON - 61 s)
    assert sum(counts.minutes) == 5  # five hours back is outside the hour
    assert counts.hours[-1] == 2
    assert counts.hours[-2] == 3
    assert counts.hours[-6] == 1
    assert sum(counts.hours) == 6
    assert sum(call_counts(redis_client, division=202, now=NOON + 40, **where).hours) == 1
    # A day later the oldest call is out of the day chart.
    assert sum(call_counts(redis_client, division=101, now=NOON - 3600 * 5 + 24 * 3600, **where).hours) == 5

    key = f"{settings.redis_prefix}usage:app-1:101:{int(NOON // 3600)}"
    assert 0 < redis_client.ttl(key) <= KEEP_SECONDS


def test_a_connections_client_counts_each_answered_call_as_the_sandbox_does(
    connected: Connected, sandbox: ServerThread, redis_client: redis.Redis
) -> None:
    client = connected.client()
    app = str(connected.settings.exact_client_id)
    where = {"prefix": connected.settings.redis_prefix, "client_id": app}
    before = {d: sum(call_counts(redis_client, division=d, **where).minutes) for d in (101, 202)}
    httpx.post(f"{sandbox.url}/_sandbox/calls/reset")
    client.divisions(101)
    client.divisions(101)
    client.divisions(202)
    answered = httpx.get(f"{sandbox.url}/_sandbox/calls").json()["calls"]
    for division in (101, 202):
        counted = sum(call_counts(redis_client, division=division, **where).minutes) - before[division]
        assert counted == sum(c["count"] for c in answered if c["division"] == division)
    assert sum(call_counts(redis_client, division=101, **where).minutes) - before[101] == 2
