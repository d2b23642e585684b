"""Line-row documents: sync rows (one per line) grouped by the header key into one record of header + `lines`.

The sync resource of an invoice, order, quotation, goods delivery or transaction returns one row per line, the
header's fields repeated. A record is the document: header fields from its newest row, `lines` ordered by
LineNumber, keyed by the header key, versioned by the highest row Timestamp (or line deletion Timestamp).

Only the rows of changed documents come back, so each lane keeps what it assembled (`DocumentState`): the rows of a
document met in a walk replace its lines (Exact re-stamps every row of a changed document, so all of them come in
the same walk; its later pages add to them).
A document whose rows may go on over the next page (it has a row at the page's last Timestamp) is held back until
that page, so each push and mirror version is a whole document; the cursor then stops short of its rows, so a crash
re-reads them. Deletions: the header's EntityType is a tombstone; a line's EntityType removes the line, and a
document without lines is a tombstone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from delivery.changes import ChangeRecord
from exact import normalize_record
from runtime.db import utc_now
from sync.coalesce import Lane
from sync.cursors import DocumentState
from sync.fetch import epoch_ms, line_order, tombstone
from sync.reading import Reading

__all__ = ["Documents"]

# Keys per `IN (...)`: well under SQLite's and PostgreSQL's limits on bound parameters.
_CHUNK = 500


@dataclass
class _Doc:
    key: str
    version: int
    modified_ms: int
    header: dict[str, Any]
    lines: dict[str, dict[str, Any]]
    row: DocumentState | None = None


@dataclass
class Documents:
    """The document state of one lane, and the changes it turns sync rows and sync/Deleted rows into."""

    lane: Lane
    reading: Reading
    # Documents assembled but not yet emitted: their rows may go on over the next page.
    held: set[str] = field(default_factory=set)
    # Where the cursor may go after the last page merged: short of the rows of the documents held back.
    position: int = 0
    # Documents whose lines this walk replaced: their rows on later pages of the walk add to them.
    renewed: set[str] = field(default_factory=set)

    # -- the sync walk
    def sync_page(self, session: Session, rows: list[dict[str, Any]], cursor: int) -> list[ChangeRecord]:
        """Merge one page of rows (`cursor`: the page's); returns the whole documents to emit, and sets `position`."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(str(row[self.reading.entity.key]).lower(), []).append(normalize_record(row))
        docs = self._load(session, set(groups) | self.held)
        for key, group in groups.items():
            docs[key] = self._merged(docs.get(key), key, group)
            self._save(session, docs[key])
        last = max((int(r["Timestamp"]) for r in rows), default=None)
        held = {k for k, group in groups.items() if any(int(r["Timestamp"]) == last for r in group)}
        ready = [docs[k] for k in dict.fromkeys([*self.held, *groups]) if k not in held and k in docs]
        self.held = held
        self.position = cursor
        if held:
            self.position = min(int(r["Timestamp"]) for k in held for r in groups[k]) - 1
        return [self._change(doc) for doc in ready]

    def finish(self, session: Session) -> list[ChangeRecord]:
        """The end of a walk: the documents held back are whole now."""
        docs = self._load(session, self.held)
        self.held = set()
        return [self._change(doc) for doc in docs.values()]

    def _merged(self, doc: _Doc | None, key: str, group: list[dict[str, Any]]) -> _Doc:
        modified = max((epoch_ms(r["Modified"]) for r in group if r.get("Modified")), default=0)
        newest = max(group, key=lambda r: int(r["Timestamp"]))
        top = int(newest["Timestamp"])
        if doc is None:
            doc = _Doc(key, 0, modified, {}, {})
        elif key not in self.renewed:
            # Exact re-stamps every row of a changed document, so the rows a walk meets are all its lines: they
            # replace what was kept (a line deleted without an EntityType of its own is gone). A line row's
            # `Modified` is the line's, so it cannot tell a newer document from an older one.
            doc.lines = {}
        self.renewed.add(key)
        if top >= doc.version or not doc.header:
            doc.header = {f: newest.get(f) for f in self.reading.header}
        for row in group:
            doc.lines[str(row["ID"]).lower()] = {f: row.get(f) for f in self.reading.lines}
        doc.version, doc.modified_ms = max(doc.version, top), max(doc.modified_ms, modified)
        return doc

    # -- sync/Deleted
    def deleted_page(self, session: Session, rows: Iterable[Mapping[str, Any]]) -> list[ChangeRecord]:
        """Tombstones of deleted documents, and documents re-emitted without their deleted lines."""
        entity = self.reading.entity
        line_type = entity.lines.deleted if entity.lines else None
        gone: dict[str, int] = {}
        removed: list[tuple[str, int]] = []
        for row in rows:
            kind, key, stamp = int(row["EntityType"]), str(row["EntityKey"]).lower(), int(row["Timestamp"])
            if kind == entity.deleted:
                gone[key] = max(gone.get(key, 0), stamp)
            elif kind == line_type:
                removed.append((key, stamp))
        owner = self._line_owners(session) if removed else {}
        docs = self._load(session, set(gone) | {owner[line] for line, _ in removed if line in owner})
        touched: dict[str, _Doc] = {}
        for line, stamp in removed:
            doc = docs.get(owner.get(line, ""))
            if doc is None or doc.key in gone:
                continue
            doc.lines.pop(line, None)
            doc.version = max(doc.version, stamp)
            if doc.lines:
                touched[doc.key] = doc
            else:
                gone[doc.key] = doc.version
                touched.pop(doc.key, None)
        self.drop(session, gone)
        for doc in touched.values():
            self._save(session, doc)
        tombstones = [tombstone(self.lane.division, entity.topic, key, stamp) for key, stamp in gone.items()]
        return tombstones + [self._change(doc) for doc in touched.values()]

    # -- the stored state
    def drop(self, session: Session, keys: Iterable[str]) -> None:
        """Forget documents (deleted)."""
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), _CHUNK):
            session.execute(
                delete(DocumentState).where(*self._lane(), DocumentState.key.in_(wanted[start : start + _CHUNK]))
            )

    def forget(self, session: Session) -> None:
        """A full resync: the lane starts afresh."""
        session.execute(delete(DocumentState).where(*self._lane()))
        self.held = set()

    def _lane(self) -> tuple[Any, ...]:
        return (
            DocumentState.connection_id == self.lane.connection_id,
            DocumentState.division == self.lane.division,
            DocumentState.topic == self.reading.topic,
        )

    def _load(self, session: Session, keys: Iterable[str]) -> dict[str, _Doc]:
        wanted, found = list(keys), dict[str, _Doc]()
        for start in range(0, len(wanted), _CHUNK):
            query = select(DocumentState).where(*self._lane(), DocumentState.key.in_(wanted[start : start + _CHUNK]))
            for row in session.scalars(query):
                doc = row.document
                found[row.key] = _Doc(
                    row.key, row.version, row.modified_ms, dict(doc["header"]), dict(doc["lines"]), row
                )
        return found

    def _line_owners(self, session: Session) -> dict[str, str]:
        """Line ID → document key, over every document of the lane (read only when lines were deleted)."""
        query = select(DocumentState.key, DocumentState.line_ids).where(*self._lane())
        return {line: key for key, ids in session.execute(query) for line in ids.split()}

    def _save(self, session: Session, doc: _Doc) -> None:
        values: dict[str, Any] = {
            "updated_at": utc_now(),
            "version": doc.version,
            "modified_ms": doc.modified_ms,
            "document": {"header": doc.header, "lines": doc.lines},
            "line_ids": " ".join(doc.lines),
        }
        if doc.row is None:
            lane = self.lane
            doc.row = DocumentState(
                connection_id=lane.connection_id,
                division=lane.division,
                topic=self.reading.topic,
                key=doc.key,
                **values,
            )
            session.add(doc.row)
        else:
            for name, value in values.items():
                setattr(doc.row, name, value)

    def _change(self, doc: _Doc) -> ChangeRecord:
        record = {**doc.header, "lines": sorted(doc.lines.values(), key=line_order)}
        return ChangeRecord(self.lane.division, self.reading.topic, doc.key, "Update", record, doc.version)
