"""Turning Exact's records into changes: a sync walk from a cursor, keyed batches, and sync/Deleted tombstones."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from exact import ExactClient, Query, key_filters, normalize_record, parse_date
from workers.changes import ChangeRecord
from workers.topics import TopicSpec

__all__ = ["by_keys", "deletions", "sync_walk"]


def _change(division: int, spec: TopicSpec, record: dict[str, Any], version: int) -> ChangeRecord:
    normal = normalize_record(record)
    return ChangeRecord(division, spec.topic, str(normal["ID"]).lower(), "Update", normal, version)


def _modified_ms(record: dict[str, Any]) -> int:
    return int(parse_date(record["Modified"]).timestamp() * 1000)


def sync_walk(
    client: ExactClient, division: int, spec: TopicSpec, cursor: int
) -> Iterator[tuple[list[ChangeRecord], int]]:
    """Pages of changes since `cursor` (1,000 a call), each with the cursor that follows it."""
    assert spec.sync_path is not None
    for page in client.sync(division, spec.sync_path, cursor, list(spec.fields)):
        yield [_change(division, spec, r, int(r["Timestamp"])) for r in page.records], page.cursor


def by_keys(client: ExactClient, division: int, spec: TopicSpec, keys: Iterable[str]) -> list[ChangeRecord]:
    """The current version of each key, in batches of `ID eq guid'…' or …` under the URL limit."""
    changes = []
    for flt in key_filters(keys):
        for record in client.iter_records(division, spec.path, Query(filter=flt, select=list(spec.fields))):
            changes.append(_change(division, spec, record, _modified_ms(record)))
    return changes


def deletions(
    client: ExactClient, division: int, spec: TopicSpec, cursor: int
) -> Iterator[tuple[list[ChangeRecord], int]]:
    """Tombstones from sync/Deleted: a deleted record is never fetched (a 404 counts against the error budget)."""
    for page in client.deleted(division, cursor, spec.entity_type):
        changes = []
        for row in page.records:
            version = (
                int(row["Timestamp"]) if spec.sync_path else int(parse_date(row["DeletedDate"]).timestamp() * 1000)
            )
            changes.append(ChangeRecord(division, spec.topic, str(row["EntityKey"]).lower(), "Delete", None, version))
        yield changes, page.cursor
