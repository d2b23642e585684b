"""Tables of the workers: the SQL mirror, the delivery log per change and sink, and the versions commands wrote."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    ScalarSelect,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, aliased, mapped_column

from runtime.db import Base, utc_now

__all__ = [
    "DELIVERY_STATES",
    "LIVE_STATES",
    "CommandWrite",
    "Delivery",
    "DeliveryState",
    "MirrorRecord",
    "newest_delivered_version",
]


class DeliveryState(StrEnum):
    """A delivery's `state`, stored as its value.

    pending: waits for its lane (new, replayed, or after a failed attempt until `due_at`); sending: an attempt is
    under way (a crash leaves it so, and the next run sends it again under the same webhook-id); delivered;
    superseded: older than a version already delivered, never sent; dead: the attempt limit was reached (a dead
    letter).
    """

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    SUPERSEDED = "superseded"
    DEAD = "dead"


DELIVERY_STATES = tuple(DeliveryState)
# Work still to do: the states a lane's head is taken from.
LIVE_STATES = (DeliveryState.PENDING, DeliveryState.SENDING)


class MirrorRecord(Base):
    """The latest version of every record per division, topic and key; a delete leaves a tombstone."""

    __tablename__ = "mirror_records"
    __table_args__ = (UniqueConstraint("division", "topic", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the version's (delivery.origin)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Delivery(Base):
    """One change for one push sink, with its state (see DeliveryState), attempts and the last error."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("sink", "event_id"),
        Index("ix_deliveries_lane", "sink", "division", "topic", "key", "state"),
        Index("ix_deliveries_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sink: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str] = mapped_column(String(200))
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(20))
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # `data.origin` of the push (delivery.origin); None on rows logged before origins were kept.
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When the next attempt may start: now for a new row, later after a failed attempt (the backoff).
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class CommandWrite(Base):
    """A version a command wrote and verified: the record's `Modified` as read back (epoch ms), the command's key and
    its client (`source`). It tells the change fetched later to be the command's (delivery.origin)."""

    __tablename__ = "command_writes"
    __table_args__ = (
        UniqueConstraint("division", "topic", "key", "modified"),
        Index("ix_command_writes_key", "key"),
        Index("ix_command_writes_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(36))
    modified: Mapped[int] = mapped_column(BigInteger)
    command: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


def newest_delivered_version() -> ScalarSelect[Any]:
    """The newest delivered version of the outer `Delivery` row's (sink, division, topic, key): a correlated scalar
    subquery, for the delivery heads and the retention prune."""
    done = aliased(Delivery)
    return (
        select(func.max(done.version))
        .where(
            done.sink == Delivery.sink,
            done.division == Delivery.division,
            done.topic == Delivery.topic,
            done.key == Delivery.key,
            done.state == DeliveryState.DELIVERED,
        )
        .correlate(Delivery)
        .scalar_subquery()
    )
