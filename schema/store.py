"""The `schema_snapshots` table: the last production snapshots recorded through each connection, and their queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from runtime.db import Base, session_scope, stored_utc, utc_now
from schema.snapshot import Snapshot

__all__ = [
    "KEEP",
    "SchemaSnapshot",
    "Stored",
    "latest",
    "latest_per_connection",
    "oldest_division",
    "save_snapshot",
    "snapshots_of",
]

# Enough to diff the newest against the ones before it; older ones are in git if the user committed them.
KEEP = 5


class SchemaSnapshot(Base):
    """One recorded snapshot (stable JSON, no value in it) of one division, read through one connection."""

    __tablename__ = "schema_snapshots"
    __table_args__ = (Index("ix_schema_snapshots_connection_recorded", "connection_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    division: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20), default="production")
    snapshot: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


@dataclass(frozen=True)
class Stored:
    """A kept snapshot, parsed, with where and when it was recorded."""

    connection_id: int
    division: int
    recorded_at: datetime
    snapshot: Snapshot


def _stored(row: SchemaSnapshot) -> Stored:
    return Stored(row.connection_id, row.division, stored_utc(row.recorded_at), Snapshot.from_json(row.snapshot))


def save_snapshot(
    sessions: sessionmaker[Session],
    connection_id: int,
    division: int,
    snapshot: Snapshot,
    *,
    keep: int = KEEP,
    recorded_at: datetime | None = None,
) -> Stored:
    """Keep `snapshot` as the connection's newest and prune all but its `keep` newest, in one transaction."""
    moment = recorded_at or utc_now()
    with session_scope(sessions) as session:
        session.add(
            SchemaSnapshot(
                connection_id=connection_id,
                division=division,
                source=snapshot.source,
                snapshot=snapshot.to_json(),
                recorded_at=moment,
            )
        )
        session.flush()
        kept = (
            select(SchemaSnapshot.id)
            .where(SchemaSnapshot.connection_id == connection_id)
            .order_by(SchemaSnapshot.recorded_at.desc(), SchemaSnapshot.id.desc())
            .limit(keep)
        )
        session.execute(
            delete(SchemaSnapshot).where(
                SchemaSnapshot.connection_id == connection_id, SchemaSnapshot.id.not_in(list(session.scalars(kept)))
            )
        )
    return Stored(connection_id, division, stored_utc(moment), snapshot)


def snapshots_of(session: Session, connection_id: int) -> list[Stored]:
    """The connection's kept snapshots, newest first."""
    query = (
        select(SchemaSnapshot)
        .where(SchemaSnapshot.connection_id == connection_id)
        .order_by(SchemaSnapshot.recorded_at.desc(), SchemaSnapshot.id.desc())
    )
    return [_stored(row) for row in session.scalars(query)]


def latest(session: Session, connection_id: int, division: int | None = None) -> Stored | None:
    """The connection's newest production snapshot (of `division`, when given)."""
    query = select(SchemaSnapshot).where(
        SchemaSnapshot.connection_id == connection_id, SchemaSnapshot.source == "production"
    )
    if division is not None:
        query = query.where(SchemaSnapshot.division == division)
    row = session.scalars(query.order_by(SchemaSnapshot.recorded_at.desc(), SchemaSnapshot.id.desc())).first()
    return None if row is None else _stored(row)


def latest_per_connection(session: Session) -> list[Stored]:
    """Each connection's newest production snapshot, by connection id."""
    newest = (
        select(SchemaSnapshot.connection_id, func.max(SchemaSnapshot.recorded_at).label("at"))
        .where(SchemaSnapshot.source == "production")
        .group_by(SchemaSnapshot.connection_id)
        .subquery()
    )
    query = (
        select(SchemaSnapshot)
        .join(
            newest,
            (SchemaSnapshot.connection_id == newest.c.connection_id) & (SchemaSnapshot.recorded_at == newest.c.at),
        )
        .where(SchemaSnapshot.source == "production")
        .order_by(SchemaSnapshot.connection_id, SchemaSnapshot.id.desc())
    )
    found: dict[int, Stored] = {}
    for row in session.scalars(query):
        found.setdefault(row.connection_id, _stored(row))  # two at the same instant: the later id
    return list(found.values())


def oldest_division(session: Session, connection_id: int, divisions: list[int]) -> int | None:
    """Of `divisions`, one never recorded through the connection (the first), else the one recorded longest ago."""
    if not divisions:
        return None
    last = dict(
        session.execute(
            select(SchemaSnapshot.division, func.max(SchemaSnapshot.recorded_at))
            .where(SchemaSnapshot.connection_id == connection_id, SchemaSnapshot.division.in_(divisions))
            .group_by(SchemaSnapshot.division)
        ).all()
    )
    never = [d for d in divisions if d not in last]
    if never:
        return never[0]
    return min(divisions, key=lambda d: (stored_utc(last[d]), d))
