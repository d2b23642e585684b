"""One call budget per app and division, shared by every process through Redis, in step with Exact's headers.

The minute window is a sliding log: no 63.5-second interval ever holds more calls than the limit, so neither
does any of Exact's whole-minute windows, even when network delay shifts a call into the next minute on Exact's
side (the margin, 5% plus half a second, costs three calls a minute). The day window resets at UTC midnight like
Exact's. A 429, or headers that say a window is spent, close the division's budget until the reset Exact gives,
for every process at once.

Each call spends for a budget class (`exact._classes`: command > webhook > delta > backfill). A class's share of
the minute and the day is reserved for it: a call of a lower class is refused while it would eat into the still
unused reserves of the classes above it, so a backfill cannot hold a command up, while the classes above may
borrow whatever the lower ones leave unused (commands may spend the whole window).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import redis

from exact._classes import BUDGET_CLASSES, BudgetClass, check_shares, current_budget_class
from exact._exceptions import EndpointBlocked, RateLimited

__all__ = ["BudgetUsage", "ClassSpend", "ErrorBudget", "RateHeaders", "RateLimiter"]

WINDOW_MARGIN = 1.05
WINDOW_SLACK_MS = 500

# KEYS: minute log, day count, closed, adopted limits, then each class's minute log and day count in priority order.
# ARGV: minute limit, window ms, day limit, member, the calling class's index (1 = highest), each class's share.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local closed = tonumber(redis.call('GET', KEYS[3]) or '0')
if closed > now then return closed - now end
local minute_limit = tonumber(redis.call('HGET', KEYS[4], 'minute') or ARGV[1])
local day_limit = tonumber(redis.call('HGET', KEYS[4], 'day') or ARGV[3])
local window = tonumber(ARGV[2])
local class = tonumber(ARGV[5])
local classes = (#KEYS - 4) / 2
local midnight = (math.floor(now / 86400000) + 1) * 86400000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local day_used = tonumber(redis.call('GET', KEYS[2]) or '0')
local held_minute, held_day = 0, 0
for i = 1, class - 1 do
  local share = tonumber(ARGV[5 + i])
  if share > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[4 + i], '-inf', now - window)
    local spent = redis.call('ZCARD', KEYS[4 + i])
    held_minute = held_minute + math.max(0, math.floor(share * minute_limit) - spent)
    local spent_day = tonumber(redis.call('GET', KEYS[4 + classes + i]) or '0')
    held_day = held_day + math.max(0, math.floor(share * day_limit) - spent_day)
  end
end
if used + held_minute >= minute_limit then
  -- At least this many calls must leave the window first (more if the classes above spend meanwhile).
  local leaving = used + held_minute - minute_limit + 1
  if leaving > used then return window end
  local freed = redis.call('ZRANGE', KEYS[1], leaving - 1, leaving - 1, 'WITHSCORES')
  return tonumber(freed[2]) + window - now + 1
end
if day_used + held_day >= day_limit then return midnight - now end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window * 2)
redis.call('INCR', KEYS[2])
redis.call('PEXPIREAT', KEYS[2], midnight + 60000)
redis.call('ZREMRANGEBYSCORE', KEYS[4 + class], '-inf', now - window)
redis.call('ZADD', KEYS[4 + class], now, ARGV[4])
redis.call('PEXPIRE', KEYS[4 + class], window * 2)
redis.call('INCR', KEYS[4 + classes + class])
redis.call('PEXPIREAT', KEYS[4 + classes + class], midnight + 60000)
return 0
"""

_CLOSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = tonumber(ARGV[1])
if until_ms <= now then return 0 end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then redis.call('SET', KEYS[1], until_ms, 'PX', until_ms - now) end
return until_ms - now
"""


@dataclass(frozen=True)
class ClassSpend:
    """What one budget class spent of a division's windows, and the part of each reserved for it."""

    minute_used: int
    minute_reserved: int
    day_used: int
    day_reserved: int


@dataclass(frozen=True)
class BudgetUsage:
    """A division's budget as this app spent it: the sliding minute, the UTC day, how long it stays closed, and
    each class's part."""

    division: int | None
    minute_used: int
    minute_limit: int
    day_used: int
    day_limit: int
    closed_for_seconds: float
    classes: dict[str, ClassSpend] = field(default_factory=dict)


@dataclass(frozen=True)
class RateHeaders:
    """Exact's rate-limit headers of one response, read in one place: the limits, whether a window is spent, and
    when each window resets (epoch milliseconds, as Exact sends them)."""

    minute_limit: int | None = None
    day_limit: int | None = None
    minute_spent: bool = False
    day_spent: bool = False
    minute_reset_ms: int | None = None
    day_reset_ms: int | None = None
    retry_after_seconds: int | None = None

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> RateHeaders:
        lower = {k.lower(): v for k, v in headers.items()}

        def number(name: str) -> int | None:
            value = lower.get(name, "")
            return int(value) if value.isdigit() else None

        return cls(
            minute_limit=number("x-ratelimit-minutely-limit"),
            day_limit=number("x-ratelimit-limit"),
            minute_spent=lower.get("x-ratelimit-minutely-remaining") == "0",
            day_spent=lower.get("x-ratelimit-remaining") == "0",
            minute_reset_ms=number("x-ratelimit-minutely-reset"),
            day_reset_ms=number("x-ratelimit-reset"),
            retry_after_seconds=number("retry-after"),
        )

    @property
    def reset_ms(self) -> int | None:
        """When a 429's window reopens: the minute's reset when given, else the day's."""
        return self.minute_reset_ms if self.minute_reset_ms is not None else self.day_reset_ms


class RateLimiter:
    """Waits, within a bound, until a call to a division may be sent.

    limiter = RateLimiter(redis_client, prefix="exact-pipeline:", client_id=app_id)
    limiter.acquire(division)          # blocks up to max_wait, else raises RateLimited; spends for the current class
    limiter.observe(division, response.headers, response.status_code)
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        client_id: str,
        per_minute: int = 60,
        per_day: int = 5000,
        window_seconds: float = 60.0,
        max_wait: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        shares: Mapping[str, float] | None = None,
    ) -> None:
        """`shares`: each class's reserved fraction of the minute and the day (sum <= 1); none given, none reserved:
        every class spends in arrival order."""
        self._redis = client
        self.shares = check_shares(shares or {})
        self._prefix = f"{prefix}exact:rl:{client_id}"
        self.per_minute = per_minute
        self.per_day = per_day
        self.window_ms = int(window_seconds * 1000 * WINDOW_MARGIN + WINDOW_SLACK_MS)
        self.max_wait = max_wait
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)
        self._close = client.register_script(_CLOSE)

    def _keys(self, division: int | None) -> list[str]:
        base = f"{self._prefix}:{division if division is not None else '-'}"
        return [f"{base}:minute", f"{base}:day", f"{base}:closed", f"{base}:limits"]

    def _class_keys(self, division: int | None) -> list[str]:
        base = f"{self._prefix}:{division if division is not None else '-'}"
        return [f"{base}:minute:{c}" for c in BUDGET_CLASSES] + [f"{base}:day:{c}" for c in BUDGET_CLASSES]

    def try_acquire(self, division: int | None, budget_class: BudgetClass | None = None) -> float:
        """Take a call from the budget for `budget_class` (default: the current one); returns 0, or the seconds to
        wait before trying again."""
        index = BUDGET_CLASSES.index(budget_class or current_budget_class()) + 1
        args: list[int | float | str] = [self.per_minute, self.window_ms, self.per_day, uuid.uuid4().hex, index]
        args += [self.shares[c] for c in BUDGET_CLASSES]
        wait_ms = self._acquire(keys=self._keys(division) + self._class_keys(division), args=args)
        return int(wait_ms) / 1000

    def note_call(self, division: int | None) -> None:
        """Count a call that was made before its division was known (a new connection's first `current/Me`)."""
        self.try_acquire(division)

    def acquire(self, division: int | None, budget_class: BudgetClass | None = None) -> None:
        deadline = time.monotonic() + self.max_wait
        while (wait := self.try_acquire(division, budget_class)) > 0:
            if time.monotonic() + wait > deadline:
                raise RateLimited(
                    f"division {division}: budget closed for {wait:.1f}s more", retry_at=time.time() + wait
                )
            self._sleep(min(wait, 5.0))

    def usage(self, division: int | None) -> BudgetUsage:
        """Read, without spending, what the division's windows hold right now (for `status` and the demo)."""
        minute, day, closed, limits = self._keys(division)
        seconds, micros = self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        pipe = self._redis.pipeline()
        pipe.zcount(minute, now_ms - self.window_ms, "+inf")
        pipe.get(day)
        pipe.get(closed)
        pipe.hgetall(limits)
        class_keys = self._class_keys(division)
        for key in class_keys[: len(BUDGET_CLASSES)]:
            pipe.zcount(key, now_ms - self.window_ms, "+inf")
        for key in class_keys[len(BUDGET_CLASSES) :]:
            pipe.get(key)
        in_minute, in_day, closed_until, adopted, *spent = pipe.execute()
        adopted = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in adopted.items()}
        minute_limit, day_limit = adopted.get("minute", self.per_minute), adopted.get("day", self.per_day)
        minutes, days = spent[: len(BUDGET_CLASSES)], spent[len(BUDGET_CLASSES) :]
        classes: dict[str, ClassSpend] = {
            c: ClassSpend(
                int(minutes[i]),
                int(self.shares[c] * minute_limit),
                int(days[i] or 0),
                int(self.shares[c] * day_limit),
            )
            for i, c in enumerate(BUDGET_CLASSES)
        }
        return BudgetUsage(
            division,
            int(in_minute),
            minute_limit,
            int(in_day or 0),
            day_limit,
            max(0.0, (int(closed_until or 0) - now_ms) / 1000),
            classes,
        )

    def close_until(self, division: int | None, until_epoch_ms: int) -> None:
        self._close(keys=[self._keys(division)[2]], args=[until_epoch_ms])

    def observe(self, division: int | None, headers: Mapping[str, str], status: int) -> None:
        """Keep the budget in step with Exact: adopt its limits, close when a window is spent or on 429."""
        rate = RateHeaders.of(headers)
        limits: dict[str, int] = {}
        if rate.minute_limit is not None:
            limits["minute"] = min(rate.minute_limit, self.per_minute)
        if rate.day_limit is not None:
            limits["day"] = min(rate.day_limit, self.per_day)
        for name, limit in limits.items():
            self._redis.hset(self._keys(division)[3], name, limit)
        spent = ((rate.minute_spent, rate.minute_reset_ms), (rate.day_spent, rate.day_reset_ms))
        closes = [reset for is_spent, reset in spent if is_spent and reset is not None]
        if status == 429:
            if rate.retry_after_seconds is not None:
                closes.append(int((time.time() + rate.retry_after_seconds) * 1000))
            if not closes:
                closes.append(int(time.time() * 1000) + self.window_ms)
        if closes:
            self.close_until(division, max(closes))


class ErrorBudget:
    """Counts 4xx answers per app, division and endpoint over an hour, and refuses to call an endpoint that nears
    Exact's block (10 an hour), so a storm of 404s cannot take the app offline.

    Exact counts every error of the app; each `share` counts its own and stops at its own threshold, so the shares
    must add up to less than EXACT_BLOCK: fetching takes FETCH_SHARE (7), commands 2 (`commands_error_budget`),
    and one is left for a call in flight when a share fills. A client's bad commands then cannot pause fetching.

    errors = ErrorBudget(redis_client, prefix="exact-pipeline:", client_id=app_id)                  # fetching
    commands = ErrorBudget(redis_client, prefix=..., client_id=app_id, threshold=2, share="commands")
    """

    COUNTED = frozenset({400, 401, 403, 404})
    EXACT_BLOCK = 10
    FETCH_SHARE = 7

    def __init__(
        self, client: redis.Redis, *, prefix: str, client_id: str, threshold: int = FETCH_SHARE, share: str = ""
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}exact:errors:{client_id}" + (f":{share}" if share else "")
        self.threshold = threshold

    def _key(self, division: int | None, endpoint: str) -> str:
        return f"{self._prefix}:{division if division is not None else '-'}:{endpoint}"

    def count(self, division: int | None, endpoint: str) -> int:
        key = self._key(division, endpoint)
        self._redis.zremrangebyscore(key, "-inf", time.time() - 3600)
        return int(self._redis.zcard(key))

    def check(self, division: int | None, endpoint: str) -> None:
        if self.count(division, endpoint) >= self.threshold:
            raise EndpointBlocked(
                f"{endpoint} in division {division} had {self.threshold} errors within the hour; paused to avoid "
                "Exact's block",
                endpoint=endpoint,
                division=division,
            )

    def record(self, division: int | None, endpoint: str, status: int) -> None:
        if status in self.COUNTED:
            key = self._key(division, endpoint)
            self._redis.zadd(key, {uuid.uuid4().hex: time.time()})
            self._redis.expire(key, 3700)
