"""Exact's records turned into changes: sync walks from a cursor, walks by `Modified`, keyed batches, tombstones.

Versions: the sync `Timestamp` where the topic has a sync endpoint, else `Modified` in epoch ms; a tombstone from
sync/Deleted carries its `Timestamp` (sync topics) or its `DeletedDate` in ms (the others). Deleted records are
never fetched: a 404 counts against Exact's error budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from delivery.changes import ChangeRecord
from exact import ExactClient, Query, datetime_literal, key_filters, normalize_record, parse_date
from sync.topics import TopicSpec

__all__ = [
    "KEYS_PER_CALL",
    "MODIFIED_OVERLAP",
    "Fetched",
    "by_keys",
    "deleted_walk",
    "epoch_ms",
    "modified_walk",
    "sync_walk",
    "tombstone",
]

# A non-sync endpoint serves 60 records a page: a batch of more keys would cost a second call anyway.
KEYS_PER_CALL = 60
# `Modified` filters have second precision and clocks drift: re-read a little of the past (versions dedupe it).
MODIFIED_OVERLAP = timedelta(minutes=2)


@dataclass(frozen=True)
class Fetched:
    """One call's worth of changes and the cursor position they take the walk to."""

    changes: list[ChangeRecord]
    position: int
    # key → Modified ms of the version fetched, or None for a tombstone (what the coalescer counts as seen)
    seen: dict[str, int | None] = field(default_factory=dict)


def epoch_ms(value: str | datetime) -> int:
    return int(parse_date(value).timestamp() * 1000)


def _update(division: int, spec: TopicSpec, record: Mapping[str, Any], version: int) -> ChangeRecord:
    normal = normalize_record(record)
    key = str(normal["ID"]).lower()
    return ChangeRecord(division=division, topic=spec.topic, key=key, action="Update", record=normal, version=version)


def tombstone(division: int, spec: TopicSpec, key: str, version: int) -> ChangeRecord:
    return ChangeRecord(
        division=division, topic=spec.topic, key=key.lower(), action="Delete", record=None, version=version
    )


def _fetched(changes: list[ChangeRecord], position: int) -> Fetched:
    seen: dict[str, int | None] = {}
    for change in changes:
        modified = change.record.get("Modified") if change.record else None
        seen[change.key] = epoch_ms(modified) if modified else None
    return Fetched(changes, position, seen)


def sync_walk(client: ExactClient, division: int, spec: TopicSpec, cursor: int) -> Iterator[Fetched]:
    """`sync/…?$filter=Timestamp gt cursor`, 1,000 a call; each page's position is the highest Timestamp so far."""
    if spec.sync_path is None:
        raise ValueError(f"{spec.topic} has no sync endpoint")
    for page in client.sync(division, spec.sync_path, cursor, list(spec.fields)):
        yield _fetched([_update(division, spec, r, int(r["Timestamp"])) for r in page.records], page.cursor)


def modified_walk(client: ExactClient, division: int, spec: TopicSpec, since_ms: int) -> Iterator[Fetched]:
    """`Modified ge datetime'…'` from a little before `since_ms` (0: everything); position = highest Modified."""
    # Some endpoints refuse a read without `$filter` (crm/Accounts): from the start of time is a filter too.
    since = datetime.fromtimestamp(since_ms / 1000, UTC) - MODIFIED_OVERLAP if since_ms else datetime(1900, 1, 1)
    query = Query(filter=f"Modified ge {datetime_literal(since)}", select=list(spec.fields))
    position = since_ms
    for records in client.iter_pages(division, spec.path, query):
        changes = [_update(division, spec, r, epoch_ms(r["Modified"])) for r in records]
        position = max([position, *(c.version for c in changes)])
        yield _fetched(changes, position)


def by_keys(client: ExactClient, division: int, spec: TopicSpec, keys: Iterable[str]) -> Iterator[Fetched]:
    """The current version of each key: `ID eq guid'…' or …`, one page per call, each URL under Exact's limit.

    A key that is not returned was deleted meanwhile (its Delete event or sync/Deleted says so) or is out of reach.
    """
    unique = list(dict.fromkeys(k.lower() for k in keys))
    for start in range(0, len(unique), KEYS_PER_CALL):
        for flt in key_filters(unique[start : start + KEYS_PER_CALL]):
            for records in client.iter_pages(division, spec.path, Query(filter=flt, select=list(spec.fields))):
                changes = [_update(division, spec, r, epoch_ms(r["Modified"])) for r in records]
                yield _fetched(changes, max((c.version for c in changes), default=0))


def deleted_walk(client: ExactClient, division: int, spec: TopicSpec, cursor: int) -> Iterator[Fetched]:
    """Tombstones from `sync/Deleted` for the topic's EntityType; position = highest Deleted Timestamp."""
    if spec.entity_type is None:
        raise ValueError(f"{spec.topic} has no sync/Deleted EntityType")
    for page in client.deleted(division, cursor, spec.entity_type):
        changes = []
        for row in page.records:
            version = int(row["Timestamp"]) if spec.sync_path else epoch_ms(row["DeletedDate"])
            changes.append(tombstone(division, spec, str(row["EntityKey"]), version))
        yield _fetched(changes, page.cursor)
