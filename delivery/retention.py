"""Pruning the delivery log: delivered and superseded rows past DELIVERY_RETENTION_DAYS, in short batches.

What stays, because delivering relies on it: every pending, sending and dead row (work still to do, and what
`deadletters replay` puts back), and in each lane (sink, division, topic, key) the delivered rows of its newest
delivered version. That row is the lane's high-water mark: a late older version, a replayed dead letter or a change
accepted again after its row was pruned is superseded against it, never sent out of order.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from delivery.models import Delivery, DeliveryState
from runtime.db import utc_now

__all__ = ["PRUNE_BATCH", "prune_deliveries"]

PRUNE_BATCH = 500
# A run stops after this many batches; the next run (hourly) carries on.
MAX_BATCHES = 200


def prune_deliveries(
    sessions: sessionmaker[Session], retention_days: float, *, batch: int = PRUNE_BATCH, max_batches: int = MAX_BATCHES
) -> int:
    """Delete prunable rows older than `retention_days` (0: none), one short transaction per batch; returns count."""
    if retention_days <= 0:
        return 0
    cutoff = utc_now() - timedelta(days=retention_days)
    removed = 0
    for _ in range(max_batches):
        with sessions() as session, session.begin():
            ids = list(session.scalars(_prunable(cutoff).limit(batch)))
            if ids:
                session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
        removed += len(ids)
        if len(ids) < batch:
            break
    return removed


def _prunable(cutoff: datetime) -> Select[int]:
    newer = aliased(Delivery)
    newest = (
        select(func.max(newer.version))
        .where(
            newer.sink == Delivery.sink,
            newer.division == Delivery.division,
            newer.topic == Delivery.topic,
            newer.key == Delivery.key,
            newer.state == DeliveryState.DELIVERED,
        )
        .scalar_subquery()
    )
    return (
        select(Delivery.id)
        .where(Delivery.state.in_((DeliveryState.DELIVERED, DeliveryState.SUPERSEDED)), Delivery.updated_at < cutoff)
        .where(or_(Delivery.state == DeliveryState.SUPERSEDED, Delivery.version < newest))
        .order_by(Delivery.id)
    )
