"""The `sql` sink: a mirror holding the latest version of every record, tombstones included."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from runtime.db import upsert, utc_now
from runtime.settings import Settings
from workers.changes import ChangeRecord
from workers.models import MirrorRecord

__all__ = ["SqlSink"]


class SqlSink:
    name = "sql"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def accept(self, session: Session, changes: Sequence[ChangeRecord]) -> None:
        table = MirrorRecord.__table__
        for change in changes:
            values = {
                "division": change.division, "topic": change.topic, "key": change.key, "version": change.version,
                "deleted": change.action == "Delete", "record": change.record, "updated_at": utc_now(),
            }  # fmt: skip
            # Never an older version over a newer one: late and duplicate events change nothing.
            upsert(session, table, values, index_elements=["division", "topic", "key"],  # type: ignore[arg-type]
                   update=["version", "deleted", "record", "updated_at"],
                   where=lambda excluded: table.c.version < excluded.version)  # fmt: skip
