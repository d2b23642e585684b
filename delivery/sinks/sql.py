"""The `sql` sink: a mirror table with the latest version of every record, tombstones included."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.orm import Session

from delivery.changes import ChangeRecord
from delivery.models import MirrorRecord
from runtime.db import upsert, utc_now
from runtime.settings import Settings

__all__ = ["SqlSink"]


class SqlSink:
    """Writes into the caller's transaction, in the same database; nothing to push afterwards."""

    name = "sql"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def accept(self, session: Session, changes: Sequence[ChangeRecord]) -> int:
        table = MirrorRecord.__table__
        assert isinstance(table, Table)
        applied = 0
        for change in changes:
            values = {
                "division": change.division,
                "topic": change.topic,
                "key": change.key,
                "version": change.version,
                "deleted": change.action == "Delete",
                "record": change.record,
                "origin": change.origin,
                "updated_at": utc_now(),
            }
            # Only a strictly newer version replaces a row: a late or repeated change, or an update older than a
            # tombstone, changes nothing (the tombstone keeps its version for exactly this comparison).
            applied += upsert(
                session,
                table,
                values,
                index_elements=["division", "topic", "key"],
                update=["version", "deleted", "record", "origin", "updated_at"],
                where=lambda excluded: table.c.version < excluded.version,
            )
        return applied
