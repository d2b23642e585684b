"""Silent subscriptions: Exact sends no heartbeat, so a pair with no webhook for too long is all there is to see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from runtime.contracts import LAST_WEBHOOK_KEY
from runtime.db import stored_utc
from subscriptions.models import Subscription, SubscriptionState

__all__ = ["SilentPair", "is_silent", "last_webhook", "last_webhooks", "silent_subscriptions"]


@dataclass(frozen=True)
class SilentPair:
    connection_id: int
    division: int
    topic: str
    since: datetime  # the last webhook, or when the pair was first tracked if none ever came


def last_webhook(row: Subscription, seen: dict[tuple[int, str], datetime] | None = None) -> datetime | None:
    """The newer of the table's time and the receiver's live one (the table is only updated by reconcile)."""
    times = [stored_utc(row.last_webhook_at)] if row.last_webhook_at else []
    if seen and (live := seen.get((row.division, row.topic.lower()))) is not None:
        times.append(live)
    return max(times, default=None)


def is_silent(
    row: Subscription,
    hours: float,
    now: datetime | None = None,
    seen: dict[tuple[int, str], datetime] | None = None,
) -> bool:
    """An active pair with no webhook for longer than `hours` (counted from its creation when none ever came)."""
    if row.state != SubscriptionState.ACTIVE:
        return False
    last = last_webhook(row, seen) or stored_utc(row.created_at)
    return (now or datetime.now(UTC)) - last > timedelta(hours=hours)


def last_webhooks(client: redis.Redis, prefix: str) -> dict[tuple[int, str], datetime]:
    """The receiver's hash of "division:topic" → epoch seconds, as (division, lower-case topic) → UTC time."""
    seen: dict[tuple[int, str], datetime] = {}
    for field, value in client.hgetall(prefix + LAST_WEBHOOK_KEY).items():
        text = field.decode() if isinstance(field, bytes) else str(field)
        division, _, topic = text.partition(":")
        if division.isdigit() and topic:
            seen[(int(division), topic.lower())] = datetime.fromtimestamp(int(value), UTC)
    return seen


def silent_subscriptions(
    session: Session, hours: float, seen: dict[tuple[int, str], datetime] | None = None, now: datetime | None = None
) -> list[SilentPair]:
    """Every silent pair of every connection, for `exact-pipeline status`."""
    found = []
    for row in session.scalars(select(Subscription).where(Subscription.state == SubscriptionState.ACTIVE)):
        if is_silent(row, hours, now, seen):
            since = last_webhook(row, seen) or stored_utc(row.created_at)
            found.append(SilentPair(row.connection_id, row.division, row.topic, since))
    return sorted(found, key=lambda p: (p.connection_id, p.division, p.topic.lower()))
