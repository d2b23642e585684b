"""The delivery log's write side: push sinks record each change here, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.orm import Session

from delivery.changes import ChangeRecord
from delivery.models import Delivery, DeliveryState
from runtime.db import upsert, utc_now

__all__ = ["record_pending"]


def record_pending(session: Session, sink: str, changes: Sequence[ChangeRecord]) -> int:
    """One pending delivery per (sink, event id); a change logged before is left as it is. Returns rows added."""
    table = Delivery.__table__
    assert isinstance(table, Table)
    added = 0
    for change in changes:
        now = utc_now()
        values = {
            "sink": sink,
            "event_id": change.event_id,
            "division": change.division,
            "topic": change.topic,
            "key": change.key,
            "version": change.version,
            "action": change.action,
            "record": change.record,
            "origin": change.origin,
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "due_at": now,
            "created_at": now,
            "updated_at": now,
        }
        added += upsert(session, table, values, index_elements=["sink", "event_id"])
    return added
