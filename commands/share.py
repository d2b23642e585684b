"""A named client's share of a division's call budget, spent in Redis before its command's write is sent.

The division's budget (`exact._ratelimit`) counts every call of the app; on top of it, the commands of a client
with a share below 1 may together spend at most that share of the division's minute and day, so a noisy client
leaves the rest to fetching and to other clients. A command is charged, before it runs, the calls its write can make
at most (each reference it names, the write, the read-back, an update's read first), capped at the client's whole
allowance so a large command still runs once its window is empty. Over the share, it is retried later, not failed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Protocol

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from commands.models import DEFAULT_CLIENT, CommandClient, CommandRecord
from commands.schema import Command, Scalar
from connections.apps import ExactApp
from connections.factory import limiter_from_settings
from exact import SPECS, RateLimited
from runtime.logging import log_event
from runtime.settings import Settings

__all__ = ["ClientShare", "ShareSpent", "calls_at_most", "spend_share"]

log = logging.getLogger(__name__)

# Seconds before a command whose share could not be read (Redis unreachable) is tried again.
UNREADABLE_RETRY_SECONDS = 30.0

_SPEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, minute_allowed, day_allowed = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + cost > minute_allowed then
  local freed = redis.call('ZRANGE', KEYS[1], used + cost - minute_allowed - 1, used + cost - minute_allowed - 1,
                           'WITHSCORES')
  return tonumber(freed[2]) + window - now + 1
end
local midnight = (math.floor(now / 86400000) + 1) * 86400000
if tonumber(redis.call('GET', KEYS[2]) or '0') + cost > day_allowed then return midnight - now end
for i = 1, cost do redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i) end
redis.call('PEXPIRE', KEYS[1], window * 2)
redis.call('INCRBY', KEYS[2], cost)
redis.call('PEXPIREAT', KEYS[2], midnight + 60000)
return 0
"""


class ShareSpent(RateLimited):
    """The client's share of the division's budget is spent; nothing was sent. Retry at `retry_at`."""

    def __init__(self, client: str, division: int, wait: float) -> None:
        super().__init__(
            f"client {client!r} spent its share of division {division}'s budget; retry in {wait:.0f} s",
            retry_at=time.time() + wait,
            status=None,
        )
        self.client = client
        self.division = division


class ClientShare:
    """Each client's sliding minute and UTC day per division, in Redis under `prefix`.

    share = ClientShare(redis_client, prefix="exact-pipeline:", window_ms=limiter.window_ms)
    wait = share.try_spend("shop", 101, cost=4, minute_allowed=12, day_allowed=1000)   # 0: spent; else seconds
    """

    def __init__(self, client: redis.Redis, *, prefix: str, window_ms: int) -> None:
        self._redis = client
        self._prefix = f"{prefix}commands:share"
        self.window_ms = window_ms
        self._spend = client.register_script(_SPEND)

    def keys(self, name: str, division: int) -> list[str]:
        base = f"{self._prefix}:{name}:{division}"
        return [f"{base}:minute", f"{base}:day"]

    def try_spend(self, name: str, division: int, *, cost: int, minute_allowed: int, day_allowed: int) -> float:
        """Take `cost` calls from the client's windows; returns 0, or the seconds until they would fit."""
        cost = max(1, min(cost, minute_allowed, day_allowed))
        args: list[int | str] = [self.window_ms, minute_allowed, day_allowed, cost, uuid.uuid4().hex]
        return int(self._spend(keys=self.keys(name, division), args=args)) / 1000


class _Context(Protocol):
    settings: Settings
    redis: redis.Redis
    sessions: sessionmaker[Session]

    def app(self, connection_id: int) -> ExactApp: ...


def calls_at_most(command: Command) -> int:
    """The Exact calls the write of `command` can make: a lookup per reference (a cached one costs none), the write,
    its read-back, and for an update the read before it."""
    spec = SPECS[command.entity]
    named = _references(spec.references, command.fields)
    if spec.lines is not None:
        for line in command.lines or ():
            named |= _references(spec.lines.references, line)
    return len(named) + (3 if command.action == "update" else 2)


def _references(references: Mapping[str, str], values: Mapping[str, Scalar]) -> set[tuple[str, str]]:
    return {(references[n], str(v).strip().lower()) for n, v in values.items() if n in references and v is not None}


def spend_share(ctx: _Context, key: str, command: Command, connection_id: int) -> None:
    """Charge command `key` to its client's share of its division's budget, or raise `ShareSpent` (nothing charged).
    The budget is that of the app of `connection_id`, the connection the command is written through.

    The all-access client, a share of 1 and a client removed since have no share to keep to."""
    with ctx.sessions() as session:
        found = session.execute(
            select(CommandRecord.client, CommandClient.share)
            .outerjoin(CommandClient, CommandClient.name == CommandRecord.client)
            .where(CommandRecord.key == key)
        ).first()
    if found is None or found.client == DEFAULT_CLIENT or found.share is None or found.share >= 1:
        return
    name, share, division = str(found.client), float(found.share), command.division
    try:
        # The budget the write spends from is its connection's app's (budgets are per app), not the default app's.
        limiter = limiter_from_settings(ctx.settings, ctx.redis, client_id=ctx.app(connection_id).client_id)
        budget = limiter.usage(division)
        shares = ClientShare(ctx.redis, prefix=ctx.settings.redis_prefix, window_ms=limiter.window_ms)
        wait = shares.try_spend(
            name,
            division,
            cost=calls_at_most(command),
            minute_allowed=max(1, int(share * budget.minute_limit)),
            day_allowed=max(1, int(share * budget.day_limit)),
        )
    except redis.RedisError as exc:
        # The share cannot be read, so it cannot be kept to; nothing was sent, and the command waits.
        raise ShareSpent(name, division, UNREADABLE_RETRY_SECONDS) from exc
    if wait > 0:
        log_event(log, "commands.share_spent", key=key, client=name, division=division, wait=round(wait, 1))
        raise ShareSpent(name, division, wait)
