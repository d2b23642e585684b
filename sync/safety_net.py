"""The safety net's plan: which divisions a delta cycle visits and which of their lanes it walks, with backoff.

Each lane has a level k in Redis (hash `{prefix}safety-net:levels`, field `connection:division:topic`): it is due in
the cycles n (n = now // DELTA_SYNC_MINUTES) with (n - phase) % 2**k == 0, where the phase is a hash of its
connection and division. The phase is the division's, not the lane's, so that the due cycles of a division's lanes
nest (a lane at level k is due only where every lane below k is due too): the division's one sync/Deleted call then
serves all its lanes due together, and divisions spread evenly over the cycles of each level.

A walk that found nothing on a lane whose subscription is healthy (active, not silent) raises its level by one, up to
DELTA_SYNC_MAX_MINUTES; a walk or sync/Deleted call that found a change (one no webhook fetched first) or an unhealthy
subscription puts it back to level 0, the base interval. A due lane whose webhook flush walked its sync cursor within
the base interval is not walked again (its level stays). The staleness bound after a lost webhook follows:
DELTA_SYNC_MAX_MINUTES + DELTA_SYNC_MINUTES (README "Safety net").
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from sync.coalesce import Lane

__all__ = ["DivisionRun", "SafetyNet", "is_due", "max_level", "next_level", "phase", "plan"]


def phase(connection_id: int, division: int) -> int:
    """The division's place in the cycles: stable across processes (not Python's salted `hash`)."""
    return zlib.crc32(f"{connection_id}:{division}".encode())


def max_level(base_minutes: float, max_minutes: float) -> int:
    """The highest level whose interval (base * 2**level) stays within the bound."""
    if base_minutes <= 0 or max_minutes <= base_minutes:
        return 0
    return int(math.floor(math.log2(max_minutes / base_minutes) + 1e-9))


def is_due(level: int, cycle: int, at: int) -> bool:
    return (cycle - at) % (1 << level) == 0


def next_level(level: int, *, found: bool, healthy: bool, top: int) -> int:
    """After a walk: back to base on a change or an unhealthy subscription, else one step further off."""
    if found or not healthy:
        return 0
    return min(level + 1, top)


@dataclass(frozen=True)
class DivisionRun:
    """One division's share of a cycle: the lanes to walk (`full`: from the start, the division moved), the lanes
    the one sync/Deleted call serves, and the lanes whose subscription is healthy (they may back off)."""

    connection_id: int
    division: int
    walk: tuple[str, ...] = ()
    full: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    healthy: tuple[str, ...] = ()

    def lane(self, topic: str) -> Lane:
        return Lane(self.connection_id, self.division, topic)

    def args(self) -> list[Any]:
        """The task's arguments, JSON-safe."""
        return [
            self.connection_id,
            self.division,
            list(self.walk),
            list(self.full),
            list(self.deleted),
            list(self.healthy),
        ]

    @classmethod
    def of(cls, args: Sequence[Any]) -> DivisionRun:
        connection_id, division, walk, full, deleted, healthy = args
        return cls(
            int(connection_id), int(division), *(tuple(str(t) for t in v) for v in (walk, full, deleted, healthy))
        )


def plan(
    lanes: Sequence[Lane],
    *,
    levels: Mapping[Lane, int],
    cycle: int,
    moved: Iterable[Lane] = (),
    healthy: Iterable[Lane] = (),
    deletes: Iterable[Lane] = (),
) -> list[DivisionRun]:
    """The divisions due in `cycle`: a lane is due by its level (0 when missing) or when its division moved (a full
    resync); `deletes` are the lanes whose topic has sync/Deleted EntityTypes."""
    moved_set, healthy_set, delete_set = set(moved), set(healthy), set(deletes)
    by_division: dict[tuple[int, int], list[Lane]] = {}
    for lane in lanes:
        by_division.setdefault((lane.connection_id, lane.division), []).append(lane)
    runs = []
    for (connection_id, division), members in by_division.items():
        at = phase(connection_id, division)
        due = [lane for lane in members if lane in moved_set or is_due(levels.get(lane, 0), cycle, at)]
        if not due:
            continue
        full = [lane for lane in due if lane in moved_set]
        walk = [lane for lane in due if lane not in moved_set]
        runs.append(
            DivisionRun(
                connection_id,
                division,
                walk=tuple(lane.topic for lane in walk),
                full=tuple(lane.topic for lane in full),
                # A full resync reads sync/Deleted from the start itself.
                deleted=tuple(lane.topic for lane in members if lane in delete_set and lane not in moved_set),
                healthy=tuple(lane.topic for lane in members if lane in healthy_set),
            )
        )
    return runs


class SafetyNet:
    """In Redis, each read in one round trip: the cycle counter, the lanes' levels, and the DivisionMoveDate each
    lane's cursor noted last. Lost with Redis, it starts again from level 0 (every lane at the base interval)."""

    def __init__(self, client: redis.Redis, prefix: str, *, top: int) -> None:
        self._client, self.top = client, top
        self._cycle = f"{prefix}safety-net:cycle"
        self._levels, self._moves = f"{prefix}safety-net:levels", f"{prefix}safety-net:moves"
        self._silent = f"{prefix}safety-net:silent"

    def next_cycle(self) -> int:
        """A counter, not the clock: a late or early beat neither skips a cycle nor repeats one."""
        return int(self._client.incr(self._cycle))

    def levels(self, lanes: Sequence[Lane]) -> dict[Lane, int]:
        if not lanes:
            return {}
        values = self._client.hmget(self._levels, [_field(lane) for lane in lanes])
        # A level above the bound (the bound was lowered) counts as the bound.
        return {lane: min(int(v), self.top) for lane, v in zip(lanes, values, strict=True) if v is not None}

    def settle(self, levels: Mapping[Lane, int]) -> None:
        if levels:
            self._client.hset(self._levels, mapping={_field(lane): level for lane, level in levels.items()})

    def noted_moves(self, lanes: Sequence[Lane]) -> dict[Lane, str]:
        """The DivisionMoveDate each lane's cursor noted last ("" for none); a lane missing: not known here."""
        if not lanes:
            return {}
        values = self._client.hmget(self._moves, [_field(lane) for lane in lanes])
        return {lane: _text(v) for lane, v in zip(lanes, values, strict=True) if v is not None}

    def note_moves(self, moves: Mapping[Lane, str]) -> None:
        if moves:
            self._client.hset(self._moves, mapping={_field(lane): date for lane, date in moves.items()})

    def silent_episodes(self) -> dict[tuple[int, int, str], str]:
        """(connection, division, lower-case topic) -> the silent episode (its last webhook) a cycle answered."""
        episodes = {}
        for field, value in self._client.hgetall(self._silent).items():
            connection, division, topic = _text(field).split(":", 2)
            episodes[(int(connection), int(division), topic)] = _text(value)
        return episodes

    def note_silent_episodes(self, episodes: Mapping[tuple[int, int, str], str]) -> None:
        """The lanes silent now and their episodes; an episode that ended is forgotten."""
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._silent)
        if episodes:
            pipe.hset(self._silent, mapping={f"{c}:{d}:{t}": e for (c, d, t), e in episodes.items()})
        pipe.execute()


def _field(lane: Lane) -> str:
    return f"{lane.connection_id}:{lane.division}:{lane.topic.lower()}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
