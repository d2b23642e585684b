"""Tables for webhook subscriptions: what we want per division and topic, what Exact holds, and follow rules."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from runtime.db import Base, utc_now

__all__ = ["FollowRule", "Subscription", "SubscriptionState"]


class SubscriptionState(StrEnum):
    """A subscription's `state`, stored as its value."""

    PENDING = "pending"  # wanted, not yet in Exact (new, wanted again, or Exact lost it)
    ACTIVE = "active"  # Exact holds it (`exact_id`)
    FAILED = "failed"  # Exact refused it, or the division cannot have it (`last_error` says why)
    REMOVED = "removed"  # no longer wanted; reconcile deletes it in Exact
    # A read-only lane (catalogue `webhook = false`): Exact sends no webhooks for it, so nothing is made in Exact and
    # only the delta sync reads it.
    SYNC_ONLY = "sync_only"
    # A followed connection's pair in a division Exact no longer lists as granted: not fetched, not delta-synced, not
    # tracked by the receiver, until the division is granted again (`subscriptions.follow`).
    SUSPENDED = "suspended"


class Subscription(Base):
    """One desired (connection, division, topic) subscription and the Exact subscription that backs it."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("connection_id", "division", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    division: Mapped[int] = mapped_column(Integer)
    topic: Mapped[str] = mapped_column(String(100))
    callback_url: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20), default=SubscriptionState.PENDING)
    exact_id: Mapped[str | None] = mapped_column(String(64))
    last_reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_webhook_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class FollowRule(Base):
    """A connection that follows its divisions (`register --all-divisions --follow`): the topics a division granted
    later is subscribed to, and every division the rule has met (never followed twice, so one removed stays so)."""

    __tablename__ = "follow_rules"

    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True)
    topics: Mapped[list[str]] = mapped_column(JSON)
    divisions: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
