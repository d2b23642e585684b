"""One lane (connection, division, topic) brought up to date: pages accepted by the sinks and the cursor advanced
in the same transaction, pushes dispatched only after it commits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exact import ExactClient, Query, datetime_literal, normalize_record, parse_date
from runtime.db import session_scope
from workers.changes import ChangeRecord
from workers.delivery import Lane, accept
from workers.fetch import by_keys, deletions, sync_walk
from workers.models import SyncCursor
from workers.sinks import Sink
from workers.topics import TopicSpec, spec_of

__all__ = ["LaneSync", "UnknownTopic"]

Dispatch = Callable[[Sequence[Lane]], None]
# Exact's Modified has second precision and clocks drift: re-read a little of the past (versions dedupe it).
MODIFIED_OVERLAP = timedelta(minutes=2)


class UnknownTopic(ValueError):
    pass


@dataclass
class LaneSync:
    sessions: sessionmaker[Session]
    client: ExactClient
    sinks: Sequence[Sink]
    dispatch: Dispatch
    connection_id: int
    division: int
    topic: str

    @property
    def spec(self) -> TopicSpec:
        spec = spec_of(self.topic)
        if spec is None:
            raise UnknownTopic(f"no fetch rules for topic {self.topic!r}")
        return spec

    def run(self, *, keys: Iterable[str] = (), deletes: bool = True, full: bool = False,
            progress: Callable[[int], None] | None = None) -> int:  # fmt: skip
        """Fetch what changed and hand it to the sinks; returns the number of changes accepted."""
        spec, keys = self.spec, list(keys)
        if full:
            self._reset()
        cursor = self._cursor()
        accepted = 0
        if spec.sync_path:
            for changes, after in sync_walk(self.client, self.division, spec, cursor.timestamp):
                accepted += self._accept(changes, timestamp=after)
                if progress:
                    progress(len(changes))
        elif keys:
            accepted += self._accept(by_keys(self.client, self.division, spec, keys))
        else:
            accepted += self._modified_walk(spec, cursor, progress)
        if deletes and spec.entity_type is not None:
            for changes, after in deletions(self.client, self.division, spec, cursor.deleted_timestamp):
                accepted += self._accept(changes, deleted_timestamp=after)
        return accepted

    def _modified_walk(self, spec: TopicSpec, cursor: SyncCursor, progress: Callable[[int], None] | None) -> int:
        since = (cursor.modified_since or datetime(2000, 1, 1, tzinfo=UTC)) - MODIFIED_OVERLAP
        query = Query(filter=f"Modified ge {datetime_literal(since)}", select=list(spec.fields))
        accepted, newest = 0, cursor.modified_since
        for page in self.client.iter_pages(self.division, spec.path, query):
            changes = []
            for record in page:
                modified = parse_date(record["Modified"])
                newest = max(newest, modified) if newest else modified
                normal = normalize_record(record)
                changes.append(ChangeRecord(self.division, spec.topic, str(normal["ID"]).lower(), "Update", normal,
                                            int(modified.timestamp() * 1000)))  # fmt: skip
            accepted += self._accept(changes, modified_since=newest)
            if progress:
                progress(len(changes))
        return accepted

    def _accept(self, changes: list[ChangeRecord], **advance: object) -> int:
        with session_scope(self.sessions) as session:
            lanes = accept(session, self.sinks, changes) if changes else []
            cursor = self._cursor(session)
            for name, value in advance.items():
                setattr(cursor, name, value)
            cursor.updated_at = datetime.now(UTC)
        if lanes:
            self.dispatch(lanes)
        return len(changes)

    def _cursor(self, session: Session | None = None) -> SyncCursor:
        if session is None:
            with session_scope(self.sessions) as own:
                return self._cursor(own)
        query = select(SyncCursor).where(
            SyncCursor.connection_id == self.connection_id,
            SyncCursor.division == self.division,
            SyncCursor.topic == self.spec.topic,
        )
        cursor = session.scalar(query)
        if cursor is None:
            cursor = SyncCursor(connection_id=self.connection_id, division=self.division, topic=self.spec.topic,
                                timestamp=0, deleted_timestamp=0)  # fmt: skip
            session.add(cursor)
            session.flush()
        return cursor

    def _reset(self) -> None:
        with session_scope(self.sessions) as session:
            cursor = self._cursor(session)
            cursor.timestamp, cursor.deleted_timestamp, cursor.modified_since = 0, 0, None
