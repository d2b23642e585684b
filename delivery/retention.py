"""Pruning the delivery log: delivered and superseded rows past DELIVERY_RETENTION_DAYS, in short batches.

What stays, because delivering relies on it: every pending, sending and dead row (work still to do, and what
`deadletters replay` puts back), and in each lane (sink, division, topic, key) the delivered rows of its newest
delivered version. That row is the lane's high-water mark: a late older version, a replayed dead letter or a change
accepted again after its row was pruned is superseded against it, never sent out of order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.models import Delivery, DeliveryState, newest_delivered_version
from runtime.db import utc_now

__all__ = ["PRUNE_BATCH", "prune_deliveries", "prune_in_batches"]

PRUNE_BATCH = 500
# A run stops after this many batches; the next run (hourly) carries on.
MAX_BATCHES = 200


def prune_deliveries(
    sessions: sessionmaker[Session], retention_days: float, *, batch: int = PRUNE_BATCH, max_batches: int = MAX_BATCHES
) -> int:
    """Delete prunable rows older than `retention_days` (0: none), one short transaction per batch; returns count."""
    if retention_days <= 0:
        return 0
    return prune_in_batches(
        sessions, Delivery, _prunable(utc_now() - timedelta(days=retention_days)), batch, max_batches
    )


def prune_in_batches(
    sessions: sessionmaker[Session],
    model: Any,
    ids: Select[int],
    batch: int = PRUNE_BATCH,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Delete the rows of `model` whose `id` the query `ids` selects, one short transaction per batch of `batch`, at
    most `max_batches` batches (the next run carries on); returns how many."""
    removed = 0
    for _ in range(max_batches):
        with sessions() as session, session.begin():
            found = list(session.scalars(ids.limit(batch)))
            if found:
                session.execute(delete(model).where(model.id.in_(found)))
        removed += len(found)
        if len(found) < batch:
            break
    return removed


def _prunable(cutoff: datetime) -> Select[int]:
    newest = newest_delivered_version()
    return (
        select(Delivery.id)
        .where(Delivery.state.in_((DeliveryState.DELIVERED, DeliveryState.SUPERSEDED)), Delivery.updated_at < cutoff)
        .where(or_(Delivery.state == DeliveryState.SUPERSEDED, Delivery.version < newest))
        .order_by(Delivery.id)
    )
