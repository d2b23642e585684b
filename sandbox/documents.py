"""Documents with lines: a header row and its line rows, changed together and served as production's line rows.

Every change to a document (its header, or a line added, replaced or deleted) goes through `touch`: the header's
`Modified` moves, its totals are summed again from the lines, and the header and every remaining line get fresh
Timestamps, each row its own (distinct values keep paging by Timestamp exact), so all rows of a changed document
reappear together in the next walk of a line-row sync resource. A deleted line leaves its own EntityType row in
sync/Deleted where the line resource has one; a deleted document leaves one per line too (`drop_lines`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

from sandbox import quirks
from sandbox.entities import DOCUMENT_SHARED, Entity, header_of, line_of, written_as
from sandbox.records import NotFoundError, WriteError

__all__ = [
    "Store",
    "add_line",
    "delete_line",
    "drop_lines",
    "lines_of",
    "replace_line",
    "replace_lines",
    "sync_rows",
    "touch",
    "write_lines",
]

Row = dict[str, Any]
_TOTALS = ("AmountDC", "AmountFC", "Amount")


class Store(quirks.Records, Protocol):
    """The store's operations documents need (a protocol: the store imports this module)."""

    def get(self, division: int, entity: Entity, key: str) -> Row: ...

    def stamp(self, entity: Entity, row: Row, *, old: Row | None = None) -> None: ...

    def next_timestamp(self) -> int: ...

    def new_id(self) -> str: ...

    def record_deleted(self, division: int, entity_type: int | None, key: str) -> None: ...


def lines_of(store: Store, division: int, header: Entity, key: str) -> list[Row]:
    """The document's lines, ordered by `LineNumber`."""
    rows = store.table(division, line_of(header).path).values()
    return sorted((r for r in rows if r.get(header.line_link) == key), key=lambda r: r.get("LineNumber") or 0)


def touch(store: Store, division: int, header: Entity, row: Row) -> None:
    """The document changed: new Modified and totals on the header, a fresh Timestamp on every one of its rows."""
    line = line_of(header)
    lines = lines_of(store, division, header, row[header.key])
    for total in _TOTALS:
        if total in header.data_fields and total in line.data_fields:
            row[total] = round(sum(float(x.get(total) or 0) for x in lines), 2)
    store.stamp(header, row, old=row)
    shared = [name for name in DOCUMENT_SHARED if name in header.data_fields and name in line.data_fields]
    for x in lines:
        x.update({name: row[name] for name in shared})
        x["Timestamp"] = store.next_timestamp()


def write_lines(store: Store, division: int, header: Entity, row: Row, bodies: list[Any]) -> None:
    """The lines of a document being created (or replaced with its lines)."""
    for number, body in enumerate(bodies, start=1):
        if not isinstance(body, dict):
            raise WriteError(f"{header.lines}: each line must be an object")
        _new_line(store, division, header, row, body, number)
    touch(store, division, header, row)


def replace_lines(store: Store, division: int, header: Entity, row: Row, body: Row) -> None:
    """A PUT of the header: the lines are replaced only when the body carries them."""
    if header.lines and header.lines in body:
        drop_lines(store, division, header, row[header.key], deleted=True)
        write_lines(store, division, header, row, body[header.lines] or [])
    else:
        touch(store, division, header, row)


def drop_lines(store: Store, division: int, header: Entity, key: str, *, deleted: bool) -> None:
    table = store.table(division, line_of(header).path)
    for line in lines_of(store, division, header, key):
        del table[line["ID"]]
        if deleted:
            store.record_deleted(division, header.line_entity_type, line["ID"])


def add_line(store: Store, division: int, line: Entity, body: Row) -> tuple[Row, str]:
    """POST of a line: the body names its document by the header key; returns the line and that key."""
    header, document = _document(store, division, line, body.get(header_of(line).line_link))
    lines = lines_of(store, division, header, document[header.key])
    number = max((int(x.get("LineNumber") or 0) for x in lines), default=0) + 1
    row = _new_line(store, division, header, document, body, number)
    touch(store, division, header, document)
    return row, document[header.key]


def replace_line(store: Store, division: int, line: Entity, key: str, body: Row) -> tuple[Row, str]:
    """PUT of a line: a full replace of its fields; it stays in its document and keeps its ID."""
    old = store.get(division, line, key)
    header, document = _document(store, division, line, old[header_of(line).line_link])
    row = {**quirks.derived(old), **_line_row(store, division, line, body)}
    row.update({"ID": old["ID"], "Division": division, header.line_link: document[header.key]})
    row["LineNumber"] = body.get("LineNumber") or old.get("LineNumber")
    store.stamp(line, row, old=old)
    store.table(division, line.path)[old["ID"]] = row
    touch(store, division, header, document)
    return row, document[header.key]


def delete_line(store: Store, division: int, line: Entity, key: str) -> str:
    """DELETE of a line; returns its document's key (the document is bumped, not deleted)."""
    old = store.get(division, line, key)
    header, document = _document(store, division, line, old[header_of(line).line_link])
    del store.table(division, line.path)[old["ID"]]
    store.record_deleted(division, header.line_entity_type, old["ID"])
    touch(store, division, header, document)
    return str(document[header.key])


def sync_rows(store: Store, division: int, header: Entity) -> list[Row]:
    """One row per line: the header's fields, then the line's (a name in both holds the line's value), with `ID`
    the line, the header key the document, and Timestamp the later of the two rowversions."""
    headers = store.table(division, header.path)
    rows: list[Row] = []
    for line in store.table(division, line_of(header).path).values():
        document = headers.get(line.get(header.line_link) or "")
        if document is None:
            continue
        row = {**document, **line}
        row.update(
            {
                "ID": line["ID"],
                header.line_link: document[header.key],
                "Timestamp": max(document["Timestamp"], line["Timestamp"]),
            }
        )
        rows.append(row)
    return rows


def grouped_lines(store: Store, division: int, header: Entity) -> dict[str, list[Row]]:
    """Every line of the division by its document's key, each list ordered by `LineNumber`."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for line in store.table(division, line_of(header).path).values():
        groups[line.get(header.line_link) or ""].append(line)
    for rows in groups.values():
        rows.sort(key=lambda r: r.get("LineNumber") or 0)
    return groups


def _document(store: Store, division: int, line: Entity, key: Any) -> tuple[Entity, Row]:
    header = header_of(line)
    if not key:
        raise WriteError(f"Mandatory: {header.line_link}")
    try:
        return header, store.get(division, header, str(key))
    except NotFoundError as exc:
        raise WriteError(f"{header.key}: no such {header.path} in division {division}: {key}") from exc


def _line_row(store: Store, division: int, line: Entity, body: Row) -> Row:
    header = header_of(line)
    skip = quirks.READ_ONLY | {line.key, header.line_link}
    # A write names a reported field as Exact takes it (`Quantity`); a merged control body, as it reads.
    renamed = written_as(line.path)
    writable = {f: body.get(renamed[f] if renamed.get(f) in body else f) for f in line.data_fields if f not in skip}
    return quirks.apply_line(store, division, line, writable)


def _new_line(store: Store, division: int, header: Entity, document: Row, body: Row, number: int) -> Row:
    line = line_of(header)
    row = _line_row(store, division, line, body)
    row.update(
        {
            "ID": str(body.get("ID") or store.new_id()),
            "Division": division,
            header.line_link: document[header.key],
            "LineNumber": body.get("LineNumber") or number,
        }
    )
    store.stamp(line, row)
    store.table(division, line.path)[row["ID"]] = row
    return row
