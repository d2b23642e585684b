"""Exact's records turned into changes: sync walks from a cursor, walks by `Modified`, keyed batches, tombstones.

Records are keyed by the entity's key field (`ID`, `EntryID`, `Code`...). Versions: the sync `Timestamp` where the
topic has a sync resource, else `Modified` in epoch ms; a tombstone from sync/Deleted carries its `Timestamp`.
Expanded documents (`shape = "expanded"`) are read with `$expand` of their lines and carry them as `lines`.
Line-row documents are assembled from these rows by `sync.documents`. Deleted records are never fetched: a 404
counts against Exact's error budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from delivery.changes import ChangeRecord
from exact import (
    MAX_URL_LENGTH,
    ExactClient,
    Query,
    SyncPage,
    datetime_literal,
    key_filters,
    normalize_record,
    parse_date,
)
from sync.reading import Reading

__all__ = [
    "KEYS_PER_CALL",
    "MODIFIED_OVERLAP",
    "Fetched",
    "by_keys",
    "deleted_pages",
    "deleted_walk",
    "epoch_ms",
    "fetched",
    "line_order",
    "modified_walk",
    "sync_walk",
    "tombstone",
]

# A non-sync endpoint serves 60 records a page: a batch of more keys would cost a second call anyway.
KEYS_PER_CALL = 60
# `Modified` filters have second precision and clocks drift: re-read a little of the past (versions dedupe it).
MODIFIED_OVERLAP = timedelta(minutes=2)
# What a URL spends beside `$filter` and `$select`: the host, `/api/v1/<division>/`, the parameter names.
_URL_SLACK = 200


@dataclass(frozen=True)
class Fetched:
    """One call's worth of changes and the cursor position they take the walk to."""

    changes: list[ChangeRecord]
    position: int
    # key → Modified ms of the version fetched, or None for a tombstone (what the coalescer counts as seen)
    seen: dict[str, int | None] = field(default_factory=dict)


def epoch_ms(value: str | datetime) -> int:
    return int(parse_date(value).timestamp() * 1000)


def line_order(line: Mapping[str, Any]) -> tuple[bool, float, str]:
    """Lines by LineNumber (a line without one last), then by ID so that the order is stable."""
    number = line.get("LineNumber")
    return (number is None, float(number) if isinstance(number, int | float) else 0.0, str(line.get("ID") or ""))


def _record(reading: Reading, row: Mapping[str, Any]) -> dict[str, Any]:
    normal = normalize_record(row)
    lines = reading.entity.lines
    if reading.entity.shape == "expanded" and lines is not None:
        expanded = normal.pop(lines.name, None)
        rows = expanded if isinstance(expanded, list) else []
        normal["lines"] = sorted(({f: line.get(f) for f in reading.lines} for line in rows), key=line_order)
    return normal


def _update(division: int, reading: Reading, row: Mapping[str, Any], version: int) -> ChangeRecord:
    record = _record(reading, row)
    key = str(record[reading.entity.key]).lower()
    return ChangeRecord(
        division=division, topic=reading.topic, key=key, action="Update", record=record, version=version
    )


def tombstone(division: int, topic: str, key: str, version: int) -> ChangeRecord:
    return ChangeRecord(division=division, topic=topic, key=key.lower(), action="Delete", record=None, version=version)


def fetched(changes: list[ChangeRecord], position: int) -> Fetched:
    """The changes with what the coalescer counts as seen: Modified ms, None for a tombstone; a record without
    `Modified` (StockPositions) is not counted."""
    seen: dict[str, int | None] = {}
    for change in changes:
        modified = change.record.get("Modified") if change.record else None
        if change.record is None:
            seen[change.key] = None
        elif modified:
            seen[change.key] = epoch_ms(modified)
    return Fetched(changes, position, seen)


def sync_walk(client: ExactClient, division: int, reading: Reading, cursor: int) -> Iterator[Fetched]:
    """`sync/…?$filter=Timestamp gt cursor`, 1,000 a call; each page's position is the highest Timestamp so far."""
    for page in sync_pages(client, division, reading, cursor):
        yield fetched([_update(division, reading, r, int(r["Timestamp"])) for r in page.records], page.cursor)


def sync_pages(client: ExactClient, division: int, reading: Reading, cursor: int) -> Iterator[SyncPage]:
    """The raw pages of the entity's sync resource (line-row documents are assembled from them)."""
    sync_path = reading.entity.sync_path
    if sync_path is None:
        raise ValueError(f"{reading.topic} has no sync resource")
    return client.sync(division, sync_path, cursor, list(reading.select))


def _expand(reading: Reading) -> str | None:
    lines = reading.entity.lines
    return lines.name if reading.entity.shape == "expanded" and lines is not None else None


def _service_path(reading: Reading) -> str:
    if reading.entity.path is None:
        raise ValueError(f"{reading.topic} has no service resource")
    return reading.entity.path


def modified_walk(client: ExactClient, division: int, reading: Reading, since_ms: int) -> Iterator[Fetched]:
    """`Modified ge datetime'…'` from a little before `since_ms` (0: everything); position = highest Modified."""
    # Some endpoints refuse a read without `$filter` (crm/Accounts): from the start of time is a filter too.
    since = datetime.fromtimestamp(since_ms / 1000, UTC) - MODIFIED_OVERLAP if since_ms else datetime(1900, 1, 1)
    query = Query(filter=f"Modified ge {datetime_literal(since)}", select=list(reading.select), expand=_expand(reading))
    position = since_ms
    for records in client.iter_pages(division, _service_path(reading), query):
        changes = [_update(division, reading, r, epoch_ms(r["Modified"])) for r in records]
        position = max([position, *(c.version for c in changes)])
        yield fetched(changes, position)


def key_budget(client: ExactClient, reading: Reading) -> int:
    """What a keyed batch's `$filter` may spend (URL-encoded) so that the URL, `$select` included, fits Exact's."""
    select = len(quote(",".join(reading.select), safe=""))
    expand = len(_expand(reading) or "")
    return MAX_URL_LENGTH - len(client.base_url) - len(_service_path(reading)) - select - expand - _URL_SLACK


def by_keys(client: ExactClient, division: int, reading: Reading, keys: Iterable[str]) -> Iterator[Fetched]:
    """The current version of each key: `<key> eq guid'…' or …`, one page per call, each URL under Exact's limit.

    A key that is not returned was deleted meanwhile (its Delete event or sync/Deleted says so) or is out of reach.
    """
    unique = list(dict.fromkeys(k.lower() for k in keys))
    path, budget, expand = _service_path(reading), key_budget(client, reading), _expand(reading)
    for start in range(0, len(unique), KEYS_PER_CALL):
        for flt in key_filters(unique[start : start + KEYS_PER_CALL], field=reading.entity.key, budget=budget):
            query = Query(filter=flt, select=list(reading.select), expand=expand)
            for records in client.iter_pages(division, path, query):
                changes = [_update(division, reading, r, epoch_ms(r["Modified"])) for r in records]
                yield fetched(changes, max((c.version for c in changes), default=0))


def deleted_pages(client: ExactClient, division: int, reading: Reading, cursor: int) -> Iterator[SyncPage]:
    """`sync/Deleted` rows of every EntityType of the entity (its own, its lines'), in one walk."""
    types = reading.entity.entity_types
    if not types:
        raise ValueError(f"{reading.topic} has no sync/Deleted EntityType")
    return client.deleted(division, cursor, types)


def deleted_walk(client: ExactClient, division: int, reading: Reading, cursor: int) -> Iterator[Fetched]:
    """Tombstones of a flat entity from `sync/Deleted`; version and position = the Deleted `Timestamp`."""
    for page in deleted_pages(client, division, reading, cursor):
        changes = [
            tombstone(division, reading.topic, str(row["EntityKey"]), int(row["Timestamp"])) for row in page.records
        ]
        yield fetched(changes, page.cursor)
