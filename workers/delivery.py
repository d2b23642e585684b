"""Changes into every sink, in the caller's transaction; pushes out of the delivery log, per key in version order."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from runtime.db import utc_now
from runtime.logging import log_event
from runtime.settings import Settings
from workers.changes import ChangeRecord
from workers.models import Delivery
from workers.sinks import Sink
from workers.sinks.base import PushFailed, PushSink

__all__ = ["Lane", "LaneResult", "accept", "deliver_lane", "lanes_of", "pending_lanes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lane:
    """Deliveries to one sink for one record: they go out one at a time, in version order."""

    sink: str
    division: int
    topic: str
    key: str


@dataclass(frozen=True)
class LaneResult:
    delivered: int
    retry: bool


def accept(session: Session, sinks: Sequence[Sink], changes: Sequence[ChangeRecord]) -> list[Lane]:
    """Every sink takes `changes` within `session`'s transaction; returns the push lanes to dispatch after commit."""
    for sink in sinks:
        sink.accept(session, changes)
    return lanes_of(sinks, changes)


def lanes_of(sinks: Sequence[Sink], changes: Sequence[ChangeRecord]) -> list[Lane]:
    keys = dict.fromkeys((c.division, c.topic, c.key) for c in changes)
    return [Lane(s.name, d, t, k) for s in sinks if isinstance(s, PushSink) for d, t, k in keys]


def deliver_lane(session: Session, sink: PushSink, lane: Lane, settings: Settings) -> LaneResult:
    """Push the lane's pending changes, oldest first; a version older than one delivered is superseded, never sent."""
    rows = list(session.scalars(
        select(Delivery).where(Delivery.sink == lane.sink, Delivery.division == lane.division,
                               Delivery.topic == lane.topic, Delivery.key == lane.key, Delivery.state == "pending")
        .order_by(Delivery.version, Delivery.id).with_for_update()
    ))  # fmt: skip
    newest = session.scalar(
        select(func.max(Delivery.version)).where(Delivery.sink == lane.sink, Delivery.division == lane.division,
                                                 Delivery.topic == lane.topic, Delivery.key == lane.key,
                                                 Delivery.state == "delivered")
    )  # fmt: skip
    delivered = 0
    for row in rows:
        if newest is not None and row.version < newest:
            row.state, row.updated_at = "superseded", utc_now()
            continue
        try:
            sink.push(_change(row))
        except PushFailed as exc:
            row.attempts += 1
            row.last_error, row.updated_at = str(exc), utc_now()
            if row.attempts >= settings.delivery_max_attempts or not exc.retry:
                row.state = "dead"
                log_event(log, "workers.delivery.dead", logging.ERROR, sink=lane.sink, event_id=row.event_id,
                          attempts=row.attempts, error=str(exc))  # fmt: skip
                continue
            session.commit()
            return LaneResult(delivered, retry=True)
        row.attempts += 1
        row.state, row.last_error, row.updated_at = "delivered", None, utc_now()
        newest = row.version
        delivered += 1
        session.commit()
    session.commit()
    return LaneResult(delivered, retry=False)


def pending_lanes(session: Session, *, older_than_seconds: float = 0.0) -> list[Lane]:
    query = select(Delivery.sink, Delivery.division, Delivery.topic, Delivery.key).where(Delivery.state == "pending")
    if older_than_seconds:
        from datetime import timedelta

        query = query.where(Delivery.updated_at < utc_now() - timedelta(seconds=older_than_seconds))
    return [Lane(*row) for row in session.execute(query.distinct())]


def _change(row: Delivery) -> ChangeRecord:
    return ChangeRecord(row.division, row.topic, row.key, row.action, row.record, row.version)
