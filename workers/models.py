"""Tables of the workers: the SQL mirror, the delivery log per change and sink, and the sync cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from runtime.db import Base, utc_now

__all__ = ["Delivery", "MirrorRecord", "SyncCursor"]


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
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Delivery(Base):
    """One change for one push sink: pending → delivered | superseded | dead, with attempts and the last error."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("sink", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sink: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str] = mapped_column(String(200))
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(20))
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SyncCursor(Base):
    """Where the delta sync of a (connection, division, topic) stands; advanced only after the sinks accepted."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("connection_id", "division", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(Integer)
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted_timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    modified_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    division_move_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
