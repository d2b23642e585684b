"""`exact-pipeline trace`: one record's way through the pipeline, from the kept history and the tables it touched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from commands.models import CommandRecord
from delivery.history import HistoryKind, entries_of
from delivery.models import CommandWrite, Delivery, DeliveryState, MirrorRecord
from exact import CATALOGUE
from runtime.dates import iso_utc
from runtime.db import stored_utc

__all__ = ["Trace", "TraceEntry", "render", "trace_record"]

# Ties (one transaction stamps the read, the mirror and the log rows alike) sort in the pipeline's order.
_ORDER = {"command": 0, HistoryKind.WEBHOOK: 1, HistoryKind.READ: 2, "mirror": 3, "delivery": 4}


@dataclass(frozen=True)
class TraceEntry:
    at: datetime
    kind: str  # "webhook", "read", "mirror", "delivery", "command"
    summary: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"at": iso_utc(self.at), "kind": self.kind, "summary": self.summary, "detail": self.detail}


@dataclass(frozen=True)
class Trace:
    division: int
    topic: str
    key: str
    entries: list[TraceEntry]  # sorted by `at`

    def as_dict(self) -> dict[str, Any]:
        return {
            "division": self.division,
            "topic": self.topic,
            "key": self.key,
            "entries": [e.as_dict() for e in self.entries],
        }


def trace_record(session: Session, division: int, topic: str, key: str) -> Trace:
    """Everything kept about one record: webhooks taken, versions read (capped per key, `TRACE_HISTORY`), the
    mirror's version, each sink's deliveries with attempts and outcome, and the commands that wrote it."""
    key, entity = key.lower(), CATALOGUE.get(topic)
    topic = entity.topic if entity is not None else topic  # the catalogue's spelling, as stored; System.* as given
    entries = [*_history(session, division, topic, key), *_mirror(session, division, topic, key)]
    entries += _deliveries(session, division, topic, key)
    entries += _commands(session, division, topic, key)
    entries.sort(key=lambda e: (e.at, _ORDER.get(e.kind, 9)))
    return Trace(division, topic, key, entries)


def _history(session: Session, division: int, topic: str, key: str) -> list[TraceEntry]:
    found = []
    for row in entries_of(session, division, topic, key):
        detail = dict(row.detail)
        if row.kind == HistoryKind.WEBHOOK:
            summary = f"webhook {detail.get('action')} received"
        else:
            summary = f"read {detail.get('action')} version {detail.get('version')} from {detail.get('call')}"
        found.append(TraceEntry(stored_utc(row.at), row.kind, summary, detail))
    return found


def _mirror(session: Session, division: int, topic: str, key: str) -> list[TraceEntry]:
    row = session.scalar(
        select(MirrorRecord).where(
            MirrorRecord.division == division, MirrorRecord.topic == topic, MirrorRecord.key == key
        )
    )
    if row is None:
        return []
    detail = {"version": row.version, "deleted": row.deleted, "origin": row.origin}
    state = "tombstone" if row.deleted else "version"
    return [TraceEntry(stored_utc(row.updated_at), "mirror", f"mirror holds {state} {row.version}", detail)]


def _deliveries(session: Session, division: int, topic: str, key: str) -> list[TraceEntry]:
    query = select(Delivery).where(Delivery.division == division, Delivery.topic == topic, Delivery.key == key)
    found = []
    for row in session.scalars(query.order_by(Delivery.version, Delivery.sink)):
        detail = {
            "sink": row.sink,
            "event_id": row.event_id,
            "version": row.version,
            "action": row.action,
            "state": row.state,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": iso_utc(stored_utc(row.created_at)),
            "delivered_at": iso_utc(stored_utc(row.delivered_at)) if row.delivered_at else None,
        }
        at = stored_utc(row.delivered_at or row.updated_at)
        summary = f"{row.sink}: version {row.version} {row.state} after {row.attempts} attempt(s)"
        if row.last_error and row.state != DeliveryState.DELIVERED:
            summary += f" ({row.last_error})"
        found.append(TraceEntry(at, "delivery", summary, detail))
    return found


def _commands(session: Session, division: int, topic: str, key: str) -> list[TraceEntry]:
    writes = session.scalars(
        select(CommandWrite).where(
            CommandWrite.division == division, CommandWrite.topic == topic, CommandWrite.key == key
        )
    )
    found = []
    for write in writes:
        command = session.get(CommandRecord, write.command)
        detail = {"command": write.command, "client": write.source, "modified_ms": write.modified}
        if command is not None:
            detail |= {"entity": command.entity, "action": command.action, "state": command.status}
        summary = f"command {write.command} of {write.source} wrote it"
        found.append(TraceEntry(stored_utc(write.created_at), "command", summary, detail))
    return found


def render(trace: Trace, console: Console) -> None:
    title = f"division {trace.division}, {escape(trace.topic)} {escape(trace.key)}"
    if not trace.entries:
        console.print(f"{title}: nothing kept (unknown record, or its history was pruned)")
        return
    table = Table("at", "step", "what", title=title)
    for entry in trace.entries:
        table.add_row(iso_utc(entry.at), entry.kind, escape(entry.summary))
    console.print(table)
