"""One lane brought up to date from Exact: each call's changes accepted by the sinks and committed, their pushes
dispatched, and only then the lane's cursor advanced, so a crash at any point repeats work and loses none.

Used three ways: a coalesced flush of webhook events (`flush`), the scheduled delta sync (`walk`) and the
`exact-pipeline sync` backfill (`walk`, with progress).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from exact import ExactClient
from runtime.db import session_scope
from runtime.logging import log_event
from runtime.settings import Settings
from sync.coalesce import Batch, Coalescer, Lane
from sync.cursors import Cursor, CursorStore
from sync.fetch import Fetched, by_keys, deleted_walk, modified_walk, sync_walk, tombstone
from sync.topics import TopicSpec, spec_of

__all__ = ["LaneSync", "UnknownTopic"]

log = logging.getLogger(__name__)
Progress = Callable[[int], object]


class UnknownTopic(ValueError):
    """No fetch rules for this topic (sync/topics.py)."""


@dataclass
class LaneSync:
    settings: Settings
    sessions: sessionmaker[Session]
    client: ExactClient
    cursors: CursorStore
    coalescer: Coalescer
    lane: Lane
    # Called after every accepted call (the flush refreshes its lane lock there); gets the number of changes.
    on_page: Progress | None = None

    @property
    def spec(self) -> TopicSpec:
        spec = spec_of(self.lane.topic)
        if spec is None:
            raise UnknownTopic(self.lane.topic)
        return spec

    # -- the entry points: a flush of webhook events, a walk (delta sync, backfill)
    def flush(self, batch: Batch) -> int:
        """Fetch what a window's events point at, in as few calls as the topic allows; returns changes accepted."""
        batch = self.coalescer.unseen(self.lane, batch)
        spec, accepted = self.spec, 0
        if batch.updates:
            if spec.sync_path:
                # One walk from the cursor: it also picks up changes whose webhook was lost.
                accepted += self._sync(self.cursors_now())
            else:
                accepted += self._keys(batch.updates)
        if batch.deletes:
            accepted += self._deletes(batch.deletes)
        return accepted

    def walk(self, *, full: bool = False) -> int:
        """The delta sync: everything since the cursor (from the start with `full`), deletions included."""
        if full:
            self.cursors.reset(self.lane.connection_id, self.lane.division, self.spec.topic)
            self.coalescer.forget_seen(self.lane)
        cursor = self.cursors_now()
        accepted = self._sync(cursor) if self.spec.sync_path else self._modified(cursor)
        if self.spec.entity_type is not None:
            accepted += self._apply_all(
                deleted_walk(self.client, self.lane.division, self.spec, cursor.deleted_timestamp),
                cursor,
                "deleted_timestamp",
            )
        return accepted

    def cursors_now(self) -> Cursor:
        return self.cursors.get(self.lane.connection_id, self.lane.division, self.spec.topic)

    # -- the ways of reading
    def _sync(self, cursor: Cursor) -> int:
        return self._apply_all(
            sync_walk(self.client, self.lane.division, self.spec, cursor.timestamp), cursor, "timestamp"
        )

    def _modified(self, cursor: Cursor) -> int:
        # Pages by Modified come in Exact's order, not Modified's: the cursor moves only once the walk is complete.
        accepted, position = 0, cursor.modified_ms
        for fetched in modified_walk(self.client, self.lane.division, self.spec, cursor.modified_ms):
            accepted += self._apply(fetched.changes, fetched.seen)
            position = max(position, fetched.position)
        self._advance(cursor, modified_ms=position)
        return accepted

    def _keys(self, updates: dict[str, int]) -> int:
        accepted = 0
        for fetched in by_keys(self.client, self.lane.division, self.spec, updates):
            accepted += self._apply(fetched.changes, fetched.seen)
        return accepted

    def _deletes(self, deletes: dict[str, int]) -> int:
        """Tombstones: from sync/Deleted where the topic has an EntityType (the versions every later walk will see
        too), else from the event time. A Delete the walk did not show becomes a tombstone at its event time."""
        spec, accepted, covered = self.spec, 0, set[str]()
        if spec.entity_type is not None:
            cursor = self.cursors_now()
            walk = deleted_walk(self.client, self.lane.division, spec, cursor.deleted_timestamp)
            for fetched in self._advancing(walk, cursor, "deleted_timestamp"):
                covered.update(fetched.seen)
                accepted += len(fetched.changes)
        rest = [tombstone(self.lane.division, spec, key, ms) for key, ms in deletes.items() if key not in covered]
        if rest:
            if spec.entity_type is not None:
                log_event(
                    log,
                    "workers.flush.delete_not_in_sync_deleted",
                    division=self.lane.division,
                    topic=spec.topic,
                    count=len(rest),
                )
            accepted += self._apply(rest, {c.key: None for c in rest})
        return accepted

    # -- accepting
    def _apply_all(self, walk: Iterable[Fetched], cursor: Cursor, position: str) -> int:
        return sum(len(f.changes) for f in self._advancing(walk, cursor, position))

    def _advancing(self, walk: Iterable[Fetched], cursor: Cursor, position: str) -> Iterator[Fetched]:
        """Accept each page, then move the cursor past it."""
        for fetched in walk:
            self._apply(fetched.changes, fetched.seen)
            self._advance(cursor, **{position: fetched.position})
            yield fetched

    def _apply(self, changes: list[ChangeRecord], seen: dict[str, int | None]) -> int:
        """The sinks accept `changes` in one transaction; after the commit their pushes go out."""
        if changes:
            with session_scope(self.sessions) as session:
                accepted = delivery.accept(session, changes, self.settings)
            delivery.dispatch_lanes(self.settings, accepted.lanes)
            self.coalescer.mark_seen(self.lane, seen)
        if self.on_page is not None:
            self.on_page(len(changes))
        return len(changes)

    def _advance(self, cursor: Cursor, **positions: int) -> None:
        moved = self.cursors.advance(
            self.lane.connection_id, self.lane.division, self.spec.topic, generation=cursor.generation, **positions
        )
        if not moved:
            log_event(log, "workers.cursor.reset_meanwhile", division=self.lane.division, topic=self.spec.topic)
