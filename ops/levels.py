"""What the demo and the level tests compare of a record of each topic: its fields, and a document's lines in order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from exact import Entity, normalize_record

__all__ = ["control_path", "line_fields", "record_fields", "sandbox_view", "view"]

# A line's row version: Exact re-stamps every row of a changed document, so it says nothing of the line's content.
_UNCOMPARED = frozenset({"Timestamp"})


def control_path(entity: Entity) -> str:
    """Where the sandbox keeps the topic's records (StockPositions has no service resource, only its sync one)."""
    path = entity.path or entity.sync_path
    assert path is not None
    return path


def record_fields(entity: Entity) -> list[str]:
    """A record's fields; of a document read by line rows, those a line row does not also carry (there the line's
    value wins) and its key."""
    if entity.lines is None or entity.shape != "line_rows":
        return list(entity.fields)
    shared = set(entity.lines.fields) - {"Division", entity.key}
    return [f for f in entity.fields if f not in shared or f == entity.key]


def line_fields(entity: Entity) -> list[str]:
    assert entity.lines is not None
    return [f for f in entity.lines.fields if f not in _UNCOMPARED]


def view(entity: Entity, record: Mapping[str, Any]) -> dict[str, Any]:
    out = {f: record.get(f) for f in record_fields(entity)}
    if entity.lines is not None:
        names = line_fields(entity)
        lines = sorted(record.get("lines") or [], key=lambda line: line.get("LineNumber") or 0)
        out["lines"] = [{f: line.get(f) for f in names} for line in lines]
    return out


def sandbox_view(
    entity: Entity, rows: Iterable[Mapping[str, Any]], line_rows: Iterable[Mapping[str, Any]] = ()
) -> dict[str, dict[str, Any]]:
    """The sandbox's records (and lines) of one division as the pipeline should hold them, by lower-cased key."""
    records = {str(r[entity.key]).lower(): dict(normalize_record(dict(r))) for r in rows}
    for line in line_rows:
        document = records.get(str(line[entity.key]).lower())
        if document is not None:
            document.setdefault("lines", []).append(normalize_record(dict(line)))
    if entity.shape == "line_rows":
        # A document without lines has no row in its sync resource: Exact shows it to no one reading by sync.
        records = {k: v for k, v in records.items() if v.get("lines")}
    return {k: view(entity, v) for k, v in records.items()}
