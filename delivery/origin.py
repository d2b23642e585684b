"""Where a change came from: the versions commands wrote and verified, and the origin each accepted change carries.

A command records the record's `Modified` as its read-back saw it (`record_write`). When the fetching side hands a
change of that record to the sinks, `with_origins` matches it: the same division, topic, key and `Modified` is the
command's version, `{"kind": "command", "key", "source"}`; anything else was changed in Exact,
`{"kind": "exact", "modifier": <the record's Modifier>}`. Recorded writes are pruned with the delivery log's
retention: a version fetched again after that is taken for Exact's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.changes import ChangeRecord
from delivery.models import CommandWrite
from delivery.retention import prune_in_batches
from exact import CATALOGUE, parse_date
from runtime.db import upsert, utc_now

__all__ = ["command_origin", "exact_origin", "prune_writes", "record_write", "topic_of", "with_origins"]

_CHUNK = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def command_origin(command: str, source: str) -> dict[str, Any]:
    return {"kind": "command", "key": command, "source": source}


def exact_origin(record: dict[str, Any] | None) -> dict[str, Any]:
    return {"kind": "exact", "modifier": (record or {}).get("Modifier")}


def topic_of(entity: str) -> str | None:
    """The topic whose records a writable entity (`Account`) makes; None for a write no topic reads."""
    for topic in CATALOGUE.topics():
        spec = CATALOGUE.require(topic).write
        if spec is not None and spec.name == entity:
            return topic
    return None


def record_write(
    session: Session,
    *,
    division: int,
    entity: str,
    key: str,
    modified: str | datetime | None,
    command: str,
    source: str,
) -> bool:
    """Keep what command `command` of client `source` wrote, in the caller's transaction; False when there is
    nothing to match it by later (no topic reads the entity, or the read-back had no `Modified` it could read)."""
    topic = topic_of(entity)
    if topic is None or not modified:
        return False
    try:
        ms = _ms(modified)
    except (TypeError, ValueError):
        return False
    table = CommandWrite.__table__
    assert isinstance(table, Table)
    values = {
        "division": division,
        "topic": topic,
        "key": key.lower(),
        "modified": ms,
        "command": command,
        "source": source,
        "created_at": utc_now(),
    }
    return upsert(session, table, values, index_elements=["division", "topic", "key", "modified"])


def with_origins(session: Session, changes: Sequence[ChangeRecord]) -> list[ChangeRecord]:
    """`changes`, each with its origin: kept when it has one (a command's result), else found as above."""
    marks = {c.event_id: (c.division, c.topic, c.key, m) for c in changes if c.origin is None and (m := _modified(c))}
    written = _written(session, {key for _, _, key, _ in marks.values()}) if marks else {}
    found = []
    for change in changes:
        if change.origin is None:
            mark = marks.get(change.event_id)
            by_command = written.get(mark) if mark is not None else None
            change = replace(change, origin=by_command or exact_origin(change.record))
        found.append(change)
    return found


def prune_writes(sessions: sessionmaker[Session], retention_days: float) -> int:
    """Delete writes recorded more than `retention_days` ago (0: none), in short batches; returns how many."""
    if retention_days <= 0:
        return 0
    cutoff = utc_now() - timedelta(days=retention_days)
    stale = select(CommandWrite.id).where(CommandWrite.created_at < cutoff).order_by(CommandWrite.id)
    return prune_in_batches(sessions, CommandWrite, stale)


def _written(session: Session, keys: set[str]) -> dict[tuple[int, str, str, int], dict[str, Any]]:
    wanted, found = sorted(keys), {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.scalars(select(CommandWrite).where(CommandWrite.key.in_(wanted[start : start + _CHUNK])))
        for row in rows:
            found[(row.division, row.topic, row.key, row.modified)] = command_origin(row.command, row.source)
    return found


def _modified(change: ChangeRecord) -> int | None:
    value = (change.record or {}).get("Modified")
    if not value or change.action == "Delete":
        return None
    try:
        return _ms(value)
    except (TypeError, ValueError):
        return None


def _ms(value: str | datetime) -> int:
    # Milliseconds, as Exact keeps them: `/Date(ms)/` on a read-back and ISO with milliseconds on a fetched record.
    return (parse_date(value) - _EPOCH) // timedelta(milliseconds=1)
