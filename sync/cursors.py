"""Sync cursors per (connection, division, topic): where the last walk stopped, advanced only after the sinks accepted.

A cursor holds three positions, one per way of reading Exact:
- `timestamp`: the highest sync `Timestamp` accepted (topics with a `sync/…` endpoint);
- `modified_ms`: the highest `Modified` accepted, in epoch ms (topics without one);
- `deleted_timestamp`: the highest `sync/Deleted` `Timestamp` accepted for the topic's EntityType.
Advances are monotonic (a late or duplicate walk never moves a cursor back) and carry the `generation` they started
from, so a walk that began before a reset (a DivisionMoveDate change) cannot undo the reset.

The lane's other state lives here too: `DocumentState`, what a lane has seen of each line-row document (its lines
do not all come back when one changes; `sync.documents` merges them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from runtime.db import Base, session_scope, upsert, utc_now

__all__ = ["Cursor", "CursorStore", "DocumentState", "LaneCursor"]


class LaneCursor(Base):
    """Where the walks of one (connection, division, topic) stand."""

    __tablename__ = "lane_cursors"
    __table_args__ = (UniqueConstraint("connection_id", "division", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    modified_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted_timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # The division's DivisionMoveDate when last seen, as Exact sent it; a change means "resync all data".
    division_move_date: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DocumentState(Base):
    """One line-row document as a lane last assembled it: header, lines by line ID, version, header Modified."""

    __tablename__ = "sync_documents"
    __table_args__ = (UniqueConstraint("connection_id", "division", "topic", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(BigInteger)
    modified_ms: Mapped[int] = mapped_column(BigInteger)
    # {"header": {...}, "lines": {line ID: {...}}}
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The line IDs, space-separated: a deleted line names only itself, and this finds its document.
    line_ids: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


@dataclass(frozen=True)
class Cursor:
    timestamp: int = 0
    modified_ms: int = 0
    deleted_timestamp: int = 0
    generation: int = 0


class CursorStore:
    """Reads and moves cursors, each change in its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, connection_id: int, division: int, topic: str) -> Cursor:
        with session_scope(self._sessions) as session:
            row = self._row(session, connection_id, division, topic)
            return Cursor(row.timestamp, row.modified_ms, row.deleted_timestamp, row.generation)

    def many(self, connection_id: int, division: int, topics: Iterable[str]) -> dict[str, Cursor]:
        """The cursors of several lanes of one division in one statement; a lane never walked starts at zero (its
        first advance creates the row, at generation 0)."""
        wanted = list(topics)
        query = select(LaneCursor).where(
            LaneCursor.connection_id == connection_id, LaneCursor.division == division, LaneCursor.topic.in_(wanted)
        )
        with self._sessions() as session:
            rows = {row.topic: row for row in session.scalars(query)}
        return {
            topic: Cursor(row.timestamp, row.modified_ms, row.deleted_timestamp, row.generation)
            if (row := rows.get(topic)) is not None
            else Cursor()
            for topic in wanted
        }

    def advance(
        self,
        connection_id: int,
        division: int,
        topic: str,
        *,
        generation: int,
        timestamp: int | None = None,
        modified_ms: int | None = None,
        deleted_timestamp: int | None = None,
    ) -> bool:
        """Move positions forward (never back); False when a reset happened since `generation` was read."""
        with session_scope(self._sessions) as session:
            row = self._row(session, connection_id, division, topic, lock=True)
            if row.generation != generation:
                return False
            if timestamp is not None:
                row.timestamp = max(row.timestamp, timestamp)
            if modified_ms is not None:
                row.modified_ms = max(row.modified_ms, modified_ms)
            if deleted_timestamp is not None:
                row.deleted_timestamp = max(row.deleted_timestamp, deleted_timestamp)
            row.updated_at = utc_now()
            return True

    def reset(self, connection_id: int, division: int, topic: str) -> None:
        """Back to the start: the next walk is a full resync."""
        with session_scope(self._sessions) as session:
            row = self._row(session, connection_id, division, topic, lock=True)
            _reset(row)

    def note_move_date(self, connection_id: int, division: int, topic: str, move_date: str | None) -> bool:
        """Remember the division's DivisionMoveDate; True (and the cursor reset) when it changed since last seen."""
        with session_scope(self._sessions) as session:
            row = self._row(session, connection_id, division, topic, lock=True)
            changed = row.division_move_date is not None and row.division_move_date != (move_date or "")
            if changed:
                _reset(row)
            row.division_move_date = move_date or ""
            return changed

    def _row(
        self, session: Session, connection_id: int, division: int, topic: str, *, lock: bool = False
    ) -> LaneCursor:
        table = LaneCursor.__table__
        values = {
            "connection_id": connection_id,
            "division": division,
            "topic": topic,
            "timestamp": 0,
            "modified_ms": 0,
            "deleted_timestamp": 0,
            "generation": 0,
            "updated_at": utc_now(),
        }
        upsert(session, table, values, index_elements=["connection_id", "division", "topic"])  # type: ignore[arg-type]
        query = select(LaneCursor).where(
            LaneCursor.connection_id == connection_id, LaneCursor.division == division, LaneCursor.topic == topic
        )
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).one()
        return row


def _reset(row: LaneCursor) -> None:
    row.timestamp = row.modified_ms = row.deleted_timestamp = 0
    row.generation += 1
    row.updated_at = utc_now()
