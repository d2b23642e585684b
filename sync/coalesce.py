"""Webhook events gathered per lane (connection, division, topic) in Redis: an idle lane's first event is fetched at
once, and what arrives while a fetch runs, or within the window after it, is gathered for the next one.

Keys, all under the settings' prefix, `lane:{connection}:{division}:{topic}:` plus
    pending     hash key → "U:<event ms>" | "D:<event ms>"  events not yet taken by a flush
    processing  the same, taken by the running flush; kept until it finished, so a crashed flush's retry finds it
    scheduled   set (NX) from the event that schedules a flush until that flush finishes with nothing pending
                (its value: the due time in Redis ms, or "running"); while it is set, new events only join pending
    state       hash: `fetched` (Redis ms when the lane's last fetch ended), `heard` (Redis ms of its last event)
    seen        hash key → Modified ms of the version last accepted ("D" once deleted): late and duplicate events
    lock        the flush (or walk) that owns the lane's cursor right now

A Delete beats an Update of the same key (a deleted record cannot be fetched). An Update event whose key was
already accepted in a version modified at or after the event (less `EVENT_LAG_MS`) is a duplicate or late:
the walk that fetched it came after the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import redis

from runtime.locks import LaneLock

__all__ = ["EVENT_LAG_MS", "Added", "Admission", "Batch", "Coalescer", "Lane", "LaneLock"]


# Exact stamps an event a moment after the write it reports; a version modified this close before the event is
# taken to be that change. Two writes to one record this close together with a fetch between them would leave the
# second to the delta sync.
EVENT_LAG_MS = 5
SEEN_TTL_SECONDS = 6 * 3600
Added = Literal["seen", "queued", "schedule"]
ADDED: tuple[Added, Added, Added] = ("seen", "queued", "schedule")  # by the add script's return code

# When the next flush is due, in Redis ms: adaptive, at once unless the lane's last fetch ended less than a window
# ago (then a window after it); fixed (the old behaviour, the benchmarks' baseline), always a window from now.
_DUE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function due(state, now, window, adaptive)
  if adaptive ~= '1' then return now + window end
  local fetched = tonumber(redis.call('HGET', state, 'fetched') or '0')
  return math.max(now, fetched + window)
end
"""

# KEYS: pending, scheduled, seen, state. ARGV: key, action ("U"|"D"), event ms, lag ms, scheduled ttl s, window ms,
# adaptive ("1"|"0"), state ttl s. Returns {0} (already seen), {1} (added; a flush is scheduled or running),
# {2, countdown ms} (added; schedule a flush in countdown ms).
_ADD = (
    _DUE
    + """
local key, action, ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
redis.call('HSET', KEYS[4], 'heard', now)
redis.call('EXPIRE', KEYS[4], ARGV[8])
local seen = redis.call('HGET', KEYS[3], key)
if seen then
  if seen == 'D' then return {0} end
  if action == 'U' and tonumber(seen) >= ms - tonumber(ARGV[4]) then return {0} end
end
local old = redis.call('HGET', KEYS[1], key)
local value = action .. ':' .. ARGV[3]
if old then
  local old_action, old_ms = string.sub(old, 1, 1), tonumber(string.sub(old, 3))
  if old_action == 'D' and action == 'U' then value = old
  elseif old_action == action and old_ms > ms then value = old end
end
redis.call('HSET', KEYS[1], key, value)
local at = due(KEYS[4], now, tonumber(ARGV[6]), ARGV[7])
if redis.call('SET', KEYS[2], at, 'NX', 'EX', ARGV[5]) then return {2, at - now} end
return {1}
"""
)

# KEYS: pending, processing, scheduled. ARGV: scheduled ttl s. Moves pending into processing (a Delete wins, the
# later event time wins) and marks the lane's flush running, so that events from now on wait for `_DONE`.
_TAKE = """
local moved = redis.call('HGETALL', KEYS[1])
for i = 1, #moved, 2 do
  local key, value = moved[i], moved[i + 1]
  local old = redis.call('HGET', KEYS[2], key)
  if (not old) or string.sub(old, 1, 1) == 'U' or string.sub(value, 1, 1) == 'D' then
    redis.call('HSET', KEYS[2], key, value)
  end
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], 'running', 'EX', ARGV[1])
return redis.call('HGETALL', KEYS[2])
"""

# KEYS: processing, pending, scheduled, state. ARGV: fetched ("1"|"0"), window ms, adaptive, scheduled ttl s,
# state ttl s. In one step with any event's add: records the fetch's end, then either keeps the flag for the next
# flush (events arrived meanwhile; returns its countdown ms) or drops it (returns -1).
_DONE = (
    _DUE
    + """
redis.call('DEL', KEYS[1])
local now = now_ms()
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[4], 'fetched', now)
  redis.call('EXPIRE', KEYS[4], ARGV[5])
end
if redis.call('HLEN', KEYS[2]) > 0 then
  local at = due(KEYS[4], now, tonumber(ARGV[2]), ARGV[3])
  redis.call('SET', KEYS[3], at, 'EX', ARGV[4])
  return at - now
end
redis.call('DEL', KEYS[3])
return -1
"""
)


@dataclass(frozen=True)
class Lane:
    """Changes of one topic in one division, read through one connection."""

    connection_id: int
    division: int
    topic: str

    def key(self, prefix: str, part: str) -> str:
        return f"{prefix}lane:{self.connection_id}:{self.division}:{self.topic.lower()}:{part}"


@dataclass(frozen=True)
class Batch:
    """What a flush took: keys to fetch (with the latest event time) and keys deleted (with the event time)."""

    updates: dict[str, int] = field(default_factory=dict)
    deletes: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.updates or self.deletes)


@dataclass(frozen=True)
class Admission:
    """What became of one event; with "schedule", the caller schedules the lane's flush `countdown` seconds out."""

    outcome: Added
    countdown: float = 0.0


class Coalescer:
    def __init__(self, client: redis.Redis, prefix: str, *, window_seconds: float, adaptive: bool = True) -> None:
        self._client, self._prefix = client, prefix
        self._window_ms = int(window_seconds * 1000)
        self._adaptive = "1" if adaptive else "0"
        # The flag outlives the window and a flush generously: if the flush is late, a second one is harmless (the
        # lock serialises them), while a flag that never expires would strand events.
        self._flag_ttl = int(window_seconds) + 60

    def add(self, lane: Lane, key: str, action: str, event_ms: int) -> Added:
        """Record one event: "schedule" (the caller must schedule the lane's flush), "queued" (a flush is coming),
        or "seen" (a walk already covered it: nothing to do)."""
        return self.admit(lane, key, action, event_ms).outcome

    def admit(self, lane: Lane, key: str, action: str, event_ms: int) -> Admission:
        """`add`, with when the flush it asks for is due."""
        keys = [lane.key(self._prefix, p) for p in ("pending", "scheduled", "seen", "state")]
        args = (key.lower(), _code(action), event_ms, EVENT_LAG_MS, self._flag_ttl, self._window_ms, self._adaptive)
        reply = self._client.eval(_ADD, 4, *keys, *args, SEEN_TTL_SECONDS)
        outcome = ADDED[int(reply[0])]
        return Admission(outcome, int(reply[1]) / 1000 if outcome == "schedule" else 0.0)

    def unschedule(self, lane: Lane) -> None:
        """The flush could not be scheduled: let the next event try again."""
        self._client.delete(lane.key(self._prefix, "scheduled"))

    def take(self, lane: Lane) -> Batch:
        """Move the pending events into processing, atomically, and return everything in processing."""
        keys = [lane.key(self._prefix, p) for p in ("pending", "processing", "scheduled")]
        flat = self._client.eval(_TAKE, 3, *keys, self._flag_ttl)
        batch = Batch()
        for raw_key, raw_value in zip(flat[::2], flat[1::2], strict=True):
            key, value = _text(raw_key), _text(raw_value)
            (batch.deletes if value[0] == "D" else batch.updates)[key] = int(value[2:])
        return batch

    def done(self, lane: Lane, *, fetched: bool = True) -> float | None:
        """The flush accepted everything it took (`fetched`: it had something to fetch). Returns the countdown in
        seconds of the next flush, which the caller must schedule, when events arrived meanwhile; else None."""
        keys = [lane.key(self._prefix, p) for p in ("processing", "pending", "scheduled", "state")]
        args = ("1" if fetched else "0", self._window_ms, self._adaptive, self._flag_ttl, SEEN_TTL_SECONDS)
        countdown = int(self._client.eval(_DONE, 4, *keys, *args))
        return None if countdown < 0 else countdown / 1000

    def last_heard_ms(self, lane: Lane) -> int | None:
        """When (Redis ms) the lane's last webhook event arrived, seen or not; None: none within `SEEN_TTL_SECONDS`."""
        return _ms(self._client.hget(lane.key(self._prefix, "state"), "heard"))

    def last_fetched_ms(self, lane: Lane) -> int | None:
        """When (Redis ms) the lane's last webhook-triggered fetch ended; None: none within `SEEN_TTL_SECONDS`."""
        return _ms(self._client.hget(lane.key(self._prefix, "state"), "fetched"))

    def unseen(self, lane: Lane, batch: Batch) -> Batch:
        """`batch` less the events a walk since their arrival already covered."""
        keys = list(batch.updates) + list(batch.deletes)
        if not keys:
            return batch
        seen = dict(zip(keys, self._client.hmget(lane.key(self._prefix, "seen"), keys), strict=True))
        updates = {k: ms for k, ms in batch.updates.items() if not _covered(seen[k], ms)}
        deletes = {k: ms for k, ms in batch.deletes.items() if _text(seen[k] or b"") != "D"}
        return Batch(updates, deletes)

    def mark_seen(self, lane: Lane, modified: Mapping[str, int | None]) -> None:
        """Versions accepted: key → Modified ms, or None for a tombstone."""
        if not modified:
            return
        key = lane.key(self._prefix, "seen")
        values = {k: ("D" if ms is None else str(ms)) for k, ms in modified.items()}
        pipe = self._client.pipeline()
        pipe.hset(key, mapping=values)  # type: ignore[arg-type]
        pipe.expire(key, SEEN_TTL_SECONDS)
        pipe.execute()

    def forget_seen(self, lane: Lane) -> None:
        """A full resync: nothing accepted before counts as seen."""
        self._client.delete(lane.key(self._prefix, "seen"))

    def lock(self, lane: Lane, owner: str, *, ttl_seconds: float) -> LaneLock:
        return LaneLock(self._client, lane.key(self._prefix, "lock"), owner, ttl_seconds)


def _code(action: str) -> str:
    return "D" if action.lower() == "delete" else "U"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _covered(seen: bytes | str | None, event_ms: int) -> bool:
    if seen is None:
        return False
    text = _text(seen)
    return text == "D" or int(text) >= event_ms - EVENT_LAG_MS


def _ms(value: bytes | str | None) -> int | None:
    return None if value is None else int(_text(value))
