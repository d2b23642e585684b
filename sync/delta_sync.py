"""One lane brought up to date from Exact: each call's changes accepted by the sinks and committed, their pushes
dispatched, and only then the lane's cursor advanced, so a crash at any point repeats work and loses none.

Used three ways: a coalesced flush of webhook events (`flush`), the scheduled delta sync (`walk`) and the
`exact-pipeline sync` backfill (`walk`, with progress).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial

from sqlalchemy.orm import Session, sessionmaker

from delivery import history
from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from exact import CATALOGUE, Entity, ExactClient, SyncPage
from runtime.db import session_scope
from runtime.logging import log_event
from runtime.settings import Settings
from sync.coalesce import Batch, Coalescer, Lane
from sync.cursors import Cursor, CursorStore
from sync.documents import Documents
from sync.fetch import (
    Fetched,
    by_keys,
    deleted_pages,
    fetched,
    modified_walk,
    sync_pages,
    sync_walk,
    tombstone,
)
from sync.reading import Reading, reading_of

__all__ = ["LaneSync", "UnknownTopic"]

log = logging.getLogger(__name__)
Progress = Callable[[int], object]
Build = Callable[[Session], list[ChangeRecord]]


class UnknownTopic(ValueError):
    """The catalogue (exact/catalogue.toml) has no entity for this topic."""


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

    @cached_property
    def reading(self) -> Reading:
        entity = CATALOGUE.get(self.lane.topic)
        if entity is None:
            raise UnknownTopic(self.lane.topic)
        return reading_of(entity, self.settings)

    @property
    def entity(self) -> Entity:
        return self.reading.entity

    @property
    def _documents(self) -> bool:
        return self.entity.shape == "line_rows"

    # -- the entry points: a flush of webhook events, a walk (delta sync, backfill)
    def flush(self, batch: Batch) -> int:
        """Fetch what a window's events point at, in as few calls as the topic allows; returns changes accepted."""
        batch = self.coalescer.unseen(self.lane, batch)
        accepted = 0
        if batch.updates:
            if self.entity.flush_path == "sync":
                # One walk from the cursor: it also picks up changes whose webhook was lost.
                accepted += self._sync(self.cursors_now())
            else:
                accepted += self._keys(batch.updates)
        if batch.deletes:
            accepted += self._deletes(batch.deletes)
        return accepted

    def walk(self, *, full: bool = False, deleted: bool = True, cursor: Cursor | None = None) -> int:
        """The delta sync: everything since the cursor (from the start with `full`), deletions included unless
        `deleted` is off (the safety net reads sync/Deleted once for all of a division's lanes: `deleted_page`).
        `cursor`: the lane's cursor as just read (`CursorStore.many`), saving a read."""
        if full:
            self.cursors.reset(self.lane.connection_id, self.lane.division, self.entity.topic)
            self.coalescer.forget_seen(self.lane)
            if self._documents:
                with session_scope(self.sessions) as session:
                    Documents(self.lane, self.reading).forget(session)
        if full or cursor is None:
            cursor = self.cursors_now()
        accepted = self._sync(cursor) if self.entity.read_path == "sync" else self._modified(cursor)
        if deleted and self.entity.entity_types:
            accepted += self._deleted(cursor)[0]
        return accepted

    def deleted_page(self, cursor: Cursor, page: SyncPage) -> tuple[int, set[str]]:
        """One page of sync/Deleted, perhaps read for several lanes at once: this lane's rows (by EntityType) after
        its cursor accepted, then its cursor moved past the page. Returns (accepted, keys tombstoned)."""
        types, after = set(self.entity.entity_types), cursor.deleted_timestamp
        rows = [r for r in page.records if int(r["EntityType"]) in types and int(r["Timestamp"]) > after]
        if not rows:
            changes: list[ChangeRecord] = []
        elif self._documents:
            changes = self._accept(partial(Documents(self.lane, self.reading).deleted_page, rows=rows))
        else:
            changes = [
                tombstone(self.lane.division, self.entity.topic, str(r["EntityKey"]), int(r["Timestamp"])) for r in rows
            ]
            self._apply(changes)
        if page.cursor > after:
            self._advance(cursor, deleted_timestamp=page.cursor)
        return len(changes), {c.key for c in changes if c.record is None}

    def cursors_now(self) -> Cursor:
        return self.cursors.get(self.lane.connection_id, self.lane.division, self.entity.topic)

    # -- the ways of reading
    def _sync(self, cursor: Cursor) -> int:
        if self._documents:
            return self._sync_documents(cursor)
        walk = sync_walk(self.client, self.lane.division, self.reading, cursor.timestamp)
        return sum(len(f.changes) for f in self._advancing(walk, cursor, "timestamp"))

    def _sync_documents(self, cursor: Cursor) -> int:
        """Line rows grouped into documents, each page's in the sinks' transaction (`sync.documents`)."""
        documents, accepted, top = Documents(self.lane, self.reading), 0, cursor.timestamp
        for page in sync_pages(self.client, self.lane.division, self.reading, cursor.timestamp):
            accepted += len(self._accept(partial(documents.sync_page, rows=page.records, cursor=page.cursor)))
            self._advance(cursor, timestamp=documents.position)
            top = page.cursor
        accepted += len(self._accept(documents.finish))
        self._advance(cursor, timestamp=top)
        return accepted

    def _modified(self, cursor: Cursor) -> int:
        # Pages by Modified come in Exact's order, not Modified's: the cursor moves only once the walk is complete.
        accepted, position = 0, cursor.modified_ms
        for page in modified_walk(self.client, self.lane.division, self.reading, cursor.modified_ms):
            accepted += self._apply(page.changes)
            position = max(position, page.position)
        self._advance(cursor, modified_ms=position)
        return accepted

    def _keys(self, updates: dict[str, int]) -> int:
        return sum(
            self._apply(page.changes) for page in by_keys(self.client, self.lane.division, self.reading, updates)
        )

    def _deleted(self, cursor: Cursor) -> tuple[int, set[str]]:
        """sync/Deleted for every EntityType of the entity, from the cursor; returns (accepted, keys tombstoned)."""
        accepted, gone = 0, set[str]()
        for page in deleted_pages(self.client, self.lane.division, self.reading, cursor.deleted_timestamp):
            count, keys = self.deleted_page(cursor, page)
            accepted += count
            gone.update(keys)
        return accepted, gone

    def _deletes(self, deletes: dict[str, int]) -> int:
        """Tombstones: from sync/Deleted where the topic has EntityTypes (the versions every later walk will see
        too), else from the event time. A Delete the walk did not show becomes a tombstone at its event time."""
        accepted, covered = 0, set[str]()
        if self.entity.entity_types:
            accepted, covered = self._deleted(self.cursors_now())
        rest = [
            tombstone(self.lane.division, self.entity.topic, k, ms) for k, ms in deletes.items() if k not in covered
        ]
        if not rest:
            return accepted
        if self.entity.entity_types:
            topic, count = self.entity.topic, len(rest)
            log_event(
                log, "workers.flush.delete_not_in_sync_deleted", division=self.lane.division, topic=topic, count=count
            )

        def build(session: Session) -> list[ChangeRecord]:
            if self._documents:
                Documents(self.lane, self.reading).drop(session, (c.key for c in rest))
            return rest

        return accepted + len(self._accept(build))

    # -- accepting
    def _advancing(self, walk: Iterable[Fetched], cursor: Cursor, position: str) -> Iterator[Fetched]:
        """Accept each page, then move the cursor past it."""
        for page in walk:
            self._apply(page.changes)
            # An empty page moved nothing: no transaction (a quiet lane's walk costs a read of its cursor only).
            if page.position > getattr(cursor, position):
                self._advance(cursor, **{position: page.position})
            yield page

    def _apply(self, changes: list[ChangeRecord]) -> int:
        if not changes:
            if self.on_page is not None:
                self.on_page(0)
            return 0
        return len(self._accept(lambda _session: changes))

    def _accept(self, build: Build) -> list[ChangeRecord]:
        """The changes `build` makes (in the same transaction) accepted by the sinks; after the commit their pushes
        go out and the coalescer counts them as seen."""
        with session_scope(self.sessions) as session:
            changes = build(session)
            history.record_reads(session, self.entity, changes)
            accepted = delivery.accept(session, changes, self.settings) if changes else None
        if accepted is not None:
            delivery.dispatch_lanes(self.settings, accepted.lanes)
            self.coalescer.mark_seen(self.lane, fetched(changes, 0).seen)
        if self.on_page is not None:
            self.on_page(len(changes))
        return changes

    def _advance(self, cursor: Cursor, **positions: int) -> None:
        moved = self.cursors.advance(
            self.lane.connection_id, self.lane.division, self.entity.topic, generation=cursor.generation, **positions
        )
        if not moved:
            log_event(log, "workers.cursor.reset_meanwhile", division=self.lane.division, topic=self.entity.topic)
