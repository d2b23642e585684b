"""The per-key trace history: webhooks taken and versions read, kept capped per key for `exact-pipeline trace`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, Select, String, Table, func, insert, select, tuple_
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from delivery.changes import ChangeRecord
from delivery.retention import prune_in_batches
from exact import Entity
from runtime.db import Base, utc_now

__all__ = ["HistoryKind", "TraceEvent", "entries_of", "prune_history", "record_reads", "record_webhooks"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Rows per INSERT: a page of 1,000 is two statements, well under both databases' bound-parameter limits.
_CHUNK = 500
# Pruning: keys over the cap handled per run, and per ranking query.
_KEYS_PER_RUN = 20_000
_KEYS_PER_BATCH = 200


class HistoryKind:
    WEBHOOK = "webhook"
    READ = "read"


class TraceEvent(Base):
    """One step of one record's history: a webhook a flush took, or a version a walk or fetch read."""

    __tablename__ = "trace_events"
    __table_args__ = (
        Index("ix_trace_events_key", "division", "topic", "key", "at"),
        Index("ix_trace_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


@dataclass(frozen=True)
class _Row:
    division: int
    topic: str
    key: str
    kind: str
    at: datetime
    detail: dict[str, Any]


def record_webhooks(
    sessions: sessionmaker[Session], division: int, topic: str, updates: Mapping[str, int], deletes: Mapping[str, int]
) -> int:
    """The webhook events a flush took (key → event time, ms), as one multi-row INSERT in one short transaction per
    flush, not a statement per event (a retried flush records its events again)."""
    rows = [
        _Row(division, topic, key.lower(), HistoryKind.WEBHOOK, _at(ms), {"action": action, "event_ms": ms})
        for action, keyed in (("Update", updates), ("Delete", deletes))
        for key, ms in keyed.items()
    ]
    if not rows:
        return 0
    with sessions() as session, session.begin():
        return _insert(session, rows)


def record_reads(session: Session, entity: Entity, changes: Sequence[ChangeRecord]) -> int:
    """The versions one call of a walk or fetch read (`changes` of `entity`'s topic), as one multi-row INSERT in the
    transaction that hands them to the outbox."""
    now = utc_now()
    rows = [
        _Row(
            c.division,
            c.topic,
            c.key,
            HistoryKind.READ,
            now,
            {"call": _call(entity, c), "action": c.action, "version": c.version},
        )
        for c in changes
    ]
    return _insert(session, rows)


def prune_history(sessions: sessionmaker[Session], keep: int, retention_days: float) -> int:
    """Delete each key's entries beyond its newest `keep`, and every entry older than `retention_days` (0: no age
    bound), in short batches; returns how many. The keys over the cap are found once, by one grouped scan of the
    key index; a run takes at most `_KEYS_PER_RUN` of them (the next run carries on)."""
    with sessions() as session:
        over = list(session.execute(_over_cap(keep)))
    removed = 0
    for start in range(0, len(over), _KEYS_PER_BATCH):
        keys = [tuple(k) for k in over[start : start + _KEYS_PER_BATCH]]
        removed += prune_in_batches(sessions, TraceEvent, _beyond(keep, keys))
    if retention_days > 0:
        removed += prune_in_batches(sessions, TraceEvent, _older(utc_now() - timedelta(days=retention_days)))
    return removed


def entries_of(session: Session, division: int, topic: str, key: str) -> list[TraceEvent]:
    """One key's kept history, oldest first."""
    query = select(TraceEvent).where(
        TraceEvent.division == division, TraceEvent.topic == topic, TraceEvent.key == key.lower()
    )
    return list(session.scalars(query.order_by(TraceEvent.at, TraceEvent.id)))


def _insert(session: Session, rows: Iterable[_Row]) -> int:
    values = [vars(r) for r in rows]
    if not values:
        return 0
    table = TraceEvent.__table__
    assert isinstance(table, Table)
    for start in range(0, len(values), _CHUNK):
        session.execute(insert(table).values(values[start : start + _CHUNK]))  # one multi-row INSERT
    return len(values)


def _call(entity: Entity, change: ChangeRecord) -> str:
    # The Exact endpoint the version came from; a tombstone came from sync/Deleted or the webhook's event time.
    if change.record is None:
        return "sync/Deleted" if entity.entity_types else "webhook"
    return entity.sync_path or entity.path or entity.topic


def _at(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _over_cap(keep: int) -> Select[int, str, str]:
    key = (TraceEvent.division, TraceEvent.topic, TraceEvent.key)
    return select(*key).group_by(*key).having(func.count(TraceEvent.id) > keep).limit(_KEYS_PER_RUN)


def _beyond(keep: int, keys: list[tuple[Any, ...]]) -> Select[int]:
    rank = (
        func.row_number()
        .over(
            partition_by=(TraceEvent.division, TraceEvent.topic, TraceEvent.key),
            order_by=(TraceEvent.at.desc(), TraceEvent.id.desc()),
        )
        .label("rank")
    )
    of_keys = tuple_(TraceEvent.division, TraceEvent.topic, TraceEvent.key).in_(keys)
    ranked = select(TraceEvent.id, rank).where(of_keys).subquery()
    return select(ranked.c.id).where(ranked.c.rank > keep).order_by(ranked.c.id)


def _older(cutoff: datetime) -> Select[int]:
    return select(TraceEvent.id).where(TraceEvent.at < cutoff).order_by(TraceEvent.id)
