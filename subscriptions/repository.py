"""Queries on the subscriptions table and the connection's divisions; every function works in the caller's session."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connections.models import Connection, Division
from runtime.db import stored_utc
from subscriptions.models import FollowRule, Subscription, SubscriptionState
from subscriptions.plan import Desired

__all__ = [
    "current_division",
    "desired",
    "division_states",
    "follow_rule",
    "follow_rules",
    "forget",
    "mark_removed",
    "record",
    "rows",
    "set_follow",
    "set_last_webhooks",
    "settle_sync_only",
    "unfollow",
    "want",
]


def current_division(session: Session, connection_id: int) -> int | None:
    connection = session.get(Connection, connection_id)
    return connection.current_division if connection else None


def division_states(session: Session, connection_id: int) -> dict[int, tuple[int, bool]]:
    """Division code → (status, granted) as last read from `system/Divisions`."""
    query = select(Division).where(Division.connection_id == connection_id)
    return {d.code: (d.status, d.granted) for d in session.scalars(query)}


def rows(session: Session, connection_id: int, divisions: Iterable[int] | None = None) -> list[Subscription]:
    query = select(Subscription).where(Subscription.connection_id == connection_id)
    if divisions is not None:
        query = query.where(Subscription.division.in_(list(divisions)))
    return list(session.scalars(query.order_by(Subscription.division, Subscription.topic)))


def _pair(session: Session, connection_id: int, division: int, topic: str) -> Subscription | None:
    return next((r for r in rows(session, connection_id, [division]) if r.topic.lower() == topic.lower()), None)


def desired(subscriptions: Iterable[Subscription], callback_url: str) -> list[Desired]:
    """The tracked rows as the planner sees them; the callback is always today's, so a moved PUBLIC_URL drifts."""
    return [
        Desired(
            r.division,
            r.topic,
            callback_url,
            r.exact_id if r.state == SubscriptionState.ACTIVE else None,
            r.last_error if r.state == SubscriptionState.FAILED else None,
        )
        for r in subscriptions
        # Nothing of a lane is in Exact; a suspended pair's division cannot be listed or changed there.
        if r.state not in (SubscriptionState.REMOVED, SubscriptionState.SYNC_ONLY, SubscriptionState.SUSPENDED)
    ]


def want(
    session: Session, connection_id: int, division: int, topic: str, callback_url: str, *, sync_only: bool = False
) -> bool:
    """Track the pair (`sync_only`: a read-only lane, nothing to make in Exact); True when that changed anything
    (a new row, a removed one wanted again, or a lane's row from before lanes were sync-only)."""
    first = SubscriptionState.SYNC_ONLY if sync_only else SubscriptionState.PENDING
    row = _pair(session, connection_id, division, topic)
    if row is None:
        session.add(
            Subscription(
                connection_id=connection_id, division=division, topic=topic, callback_url=callback_url, state=first
            )
        )
        session.flush()
        return True
    if row.state == SubscriptionState.REMOVED or (sync_only and row.state != SubscriptionState.SYNC_ONLY):
        row.state, row.exact_id, row.last_error = first, None, None
        return True
    return False


def settle_sync_only(session: Session, connection_id: int, topics: Iterable[str]) -> int:
    """Rows of these read-only lanes made before lanes were sync-only become `sync_only`; how many changed.
    A subscription Exact still holds for one is then not wanted, so reconcile deletes it."""
    names = {t.lower() for t in topics}
    changed = 0
    for row in rows(session, connection_id):
        if row.topic.lower() in names and row.state not in (SubscriptionState.REMOVED, SubscriptionState.SYNC_ONLY):
            row.state, row.exact_id, row.last_error = SubscriptionState.SYNC_ONLY, None, None
            changed += 1
    return changed


def mark_removed(session: Session, connection_id: int, division: int, topics: Iterable[str] | None = None) -> int:
    """Stop tracking the division's pairs (all, or these topics); reconcile then deletes them in Exact."""
    names = None if topics is None else {t.lower() for t in topics}
    changed = 0
    for row in rows(session, connection_id, [division]):
        if row.state != SubscriptionState.REMOVED and (names is None or row.topic.lower() in names):
            row.state = SubscriptionState.REMOVED
            changed += 1
    return changed


def record(
    session: Session,
    connection_id: int,
    division: int,
    topic: str,
    *,
    state: SubscriptionState,
    exact_id: str | None,
    error: str | None,
    callback_url: str,
    now: datetime,
) -> None:
    """Store the outcome of an action on a tracked pair (a pair we do not track has no row to update)."""
    row = _pair(session, connection_id, division, topic)
    if row is None or row.state == SubscriptionState.REMOVED:
        return
    row.state, row.exact_id, row.last_error = state, exact_id, error
    row.callback_url, row.last_reconciled_at = callback_url, now


def forget(session: Session, connection_id: int, division: int, exact_id: str, now: datetime) -> None:
    """Exact no longer holds `exact_id`: drop it from whichever row recorded it."""
    for row in rows(session, connection_id, [division]):
        if row.exact_id == exact_id:
            row.exact_id, row.last_reconciled_at = None, now
            if row.state == SubscriptionState.ACTIVE:
                row.state = SubscriptionState.PENDING


def set_last_webhooks(session: Session, seen: Mapping[tuple[int, str], datetime]) -> int:
    """Copy the receiver's last-webhook times (keyed by division and lower-case topic) onto every connection's rows."""
    updated = 0
    for row in session.scalars(select(Subscription).where(Subscription.division.in_({d for d, _ in seen}))):
        stamp = seen.get((row.division, row.topic.lower()))
        if stamp is not None and (row.last_webhook_at is None or stored_utc(row.last_webhook_at) != stamp):
            row.last_webhook_at = stamp
            updated += 1
    return updated


def follow_rule(session: Session, connection_id: int) -> FollowRule | None:
    return session.get(FollowRule, connection_id)


def follow_rules(session: Session, connection_ids: Iterable[int]) -> list[FollowRule]:
    query = select(FollowRule).where(FollowRule.connection_id.in_(list(connection_ids)))
    return list(session.scalars(query.order_by(FollowRule.connection_id)))


def set_follow(
    session: Session, connection_id: int, topics: Sequence[str], divisions: Iterable[int], now: datetime
) -> FollowRule:
    """Follow the connection's divisions with these topics (they replace the rule's); `divisions` count as met."""
    rule = follow_rule(session, connection_id)
    if rule is None:
        rule = FollowRule(connection_id=connection_id, topics=list(topics), divisions=sorted(set(divisions)))
        session.add(rule)
    else:
        rule.topics, rule.divisions = list(topics), sorted({*rule.divisions, *divisions})
    rule.updated_at = now
    session.flush()
    return rule


def unfollow(session: Session, connection_id: int) -> bool:
    """Drop the connection's rule; True when there was one. Its subscriptions stay."""
    rule = follow_rule(session, connection_id)
    if rule is None:
        return False
    session.delete(rule)
    return True
