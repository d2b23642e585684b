"""Webhook events gathered per lane (connection, division, topic) in Redis, so one flush fetches a window's worth.

Keys, all under the settings' prefix, `lane:{connection}:{division}:{topic}:` plus
    pending     hash key → "U:<event ms>" | "D:<event ms>"  events not yet taken by a flush
    processing  the same, taken by the running flush; kept until it finished, so a crashed flush's retry finds it
    scheduled   set (NX) while one flush is scheduled for the lane; dropped atomically with the take
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

__all__ = ["EVENT_LAG_MS", "Added", "Batch", "Coalescer", "Lane", "LaneLock"]


# Exact stamps an event a moment after the write it reports; a version modified this close before the event is
# taken to be that change. Two writes to one record this close together with a fetch between them would leave the
# second to the delta sync.
EVENT_LAG_MS = 5
SEEN_TTL_SECONDS = 6 * 3600
Added = Literal["seen", "queued", "schedule"]
ADDED: tuple[Added, Added, Added] = ("seen", "queued", "schedule")  # by the add script's return code

# KEYS: pending, scheduled, seen. ARGV: key, action ("U"|"D"), event ms, lag ms, scheduled ttl s.
# Returns 0 (already seen), 1 (added; a flush is already scheduled), 2 (added; schedule a flush now).
_ADD = """
local key, action, ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seen = redis.call('HGET', KEYS[3], key)
if seen then
  if seen == 'D' then return 0 end
  if action == 'U' and tonumber(seen) >= ms - tonumber(ARGV[4]) then return 0 end
end
local old = redis.call('HGET', KEYS[1], key)
local value = action .. ':' .. ARGV[3]
if old then
  local old_action, old_ms = string.sub(old, 1, 1), tonumber(string.sub(old, 3))
  if old_action == 'D' and action == 'U' then value = old
  elseif old_action == action and old_ms > ms then value = old end
end
redis.call('HSET', KEYS[1], key, value)
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5]) then return 2 end
return 1
"""

# KEYS: pending, processing, scheduled. Moves pending into processing (a Delete wins, the later event time wins),
# drops the schedule flag in the same step so that any later event schedules a new flush, returns processing.
_TAKE = """
local moved = redis.call('HGETALL', KEYS[1])
for i = 1, #moved, 2 do
  local key, value = moved[i], moved[i + 1]
  local old = redis.call('HGET', KEYS[2], key)
  if (not old) or string.sub(old, 1, 1) == 'U' or string.sub(value, 1, 1) == 'D' then
    redis.call('HSET', KEYS[2], key, value)
  end
end
redis.call('DEL', KEYS[1], KEYS[3])
return redis.call('HGETALL', KEYS[2])
"""


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


class Coalescer:
    def __init__(self, client: redis.Redis, prefix: str, *, window_seconds: float) -> None:
        self._client, self._prefix = client, prefix
        # The flag outlives the window generously: if the flush is late, a second one is harmless (the lock
        # serialises them), while a flag that never expires would strand events.
        self._flag_ttl = int(window_seconds) + 60

    def add(self, lane: Lane, key: str, action: str, event_ms: int) -> Added:
        """Record one event: "schedule" (the caller must schedule the lane's flush), "queued" (a flush is coming),
        or "seen" (a walk already covered it: nothing to do)."""
        keys = [lane.key(self._prefix, p) for p in ("pending", "scheduled", "seen")]
        code = self._client.eval(_ADD, 3, *keys, key.lower(), _code(action), event_ms, EVENT_LAG_MS, self._flag_ttl)
        return ADDED[int(code)]

    def unschedule(self, lane: Lane) -> None:
        """The flush could not be scheduled: let the next event try again."""
        self._client.delete(lane.key(self._prefix, "scheduled"))

    def take(self, lane: Lane) -> Batch:
        """Move the pending events into processing, atomically, and return everything in processing."""
        keys = [lane.key(self._prefix, p) for p in ("pending", "processing", "scheduled")]
        flat = self._client.eval(_TAKE, 3, *keys)
        batch = Batch()
        for raw_key, raw_value in zip(flat[::2], flat[1::2], strict=True):
            key, value = _text(raw_key), _text(raw_value)
            (batch.deletes if value[0] == "D" else batch.updates)[key] = int(value[2:])
        return batch

    def done(self, lane: Lane) -> None:
        """The flush accepted everything it took."""
        self._client.delete(lane.key(self._prefix, "processing"))

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
