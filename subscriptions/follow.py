"""Following a connection's divisions: subscribe the ones granted later, suspend the revoked, resume the re-granted.

`subscriptions register --all-divisions --follow` stores a `FollowRule`: the topics, and every division the rule has
met. Each full reconcile then, before it plans:

- a division granted and active that the rule has not met is wanted with the rule's topics; once Exact holds its
  subscriptions, each of its lanes is backfilled (a full delta sync, queued for the workers);
- on a followed connection, every subscription of a division Exact no longer lists as granted is `suspended`: not
  fetched, not delta-synced (a 403 each time), and no longer tracked by the receiver;
- a `suspended` subscription whose division is granted again is wanted again; its lanes catch up from their cursors.

A division the rule has met is never followed again, so one removed by hand stays removed. The backfill is queued by
task name (`runtime.contracts.DELTA_SYNC`) because `sync` imports this package, not the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from connections.models import DivisionStatus
from runtime.broker import producer
from runtime.contracts import DELTA_SYNC, EVENTS_QUEUE
from runtime.settings import Settings
from subscriptions import repository as repo
from subscriptions.models import FollowRule, Subscription, SubscriptionState

__all__ = ["REVOKED", "Backfill", "FollowPlan", "apply_follow", "delta_sync_by_name", "plan_follow"]

REVOKED = "division no longer granted to the app: suspended until it is granted again"

# (connection, division, topic, full): start the delta sync of one lane.
Backfill = Callable[[int, int, str, bool], None]


@dataclass
class FollowPlan:
    """What a reconcile does for the rule: divisions to subscribe, suspend and resume, and the lanes to backfill."""

    followed: list[int] = field(default_factory=list)
    suspended: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    backfill: list[tuple[int, str, bool]] = field(default_factory=list)  # (division, topic, full), once applied
    held: list[tuple[int, str]] = field(default_factory=list)  # (division, Exact ID) of suspended ones, to delete


def plan_follow(
    rule: FollowRule | None, subscriptions: Iterable[Subscription], states: Mapping[int, tuple[int, bool]]
) -> FollowPlan:
    """The divisions to follow, suspend and resume, from the rule, the connection's rows and its divisions."""
    rows = list(subscriptions)
    granted = {code for code, (_status, ok) in states.items() if ok}
    resumed = {r.division for r in rows if r.state == SubscriptionState.SUSPENDED and r.division in granted}
    if rule is None:
        return FollowPlan(resumed=sorted(resumed))
    active = {code for code, (status, ok) in states.items() if ok and status == DivisionStatus.ACTIVE}
    # An empty list is a consent problem, not every grant revoked at once: suspending everything would hide it.
    live = (SubscriptionState.REMOVED, SubscriptionState.SUSPENDED)
    revoked = {r.division for r in rows if r.state not in live and r.division not in granted} if granted else set()
    return FollowPlan(followed=sorted(active - set(rule.divisions)), suspended=sorted(revoked), resumed=sorted(resumed))


def apply_follow(
    session: Session, connection_id: int, plan: FollowPlan, *, callback_url: str, lanes: frozenset[str], now: datetime
) -> FollowPlan:
    """Store the plan: want the followed divisions' pairs, suspend and resume rows; fills `backfill` and `held`."""
    rule = repo.follow_rule(session, connection_id)
    if rule is not None and plan.followed:
        for division in plan.followed:
            for topic in rule.topics:
                wanted = repo.want(
                    session, connection_id, division, topic, callback_url, sync_only=topic.lower() in lanes
                )
                if wanted:  # a pair tracked already is synced already
                    plan.backfill.append((division, topic, True))
        rule.divisions = sorted({*rule.divisions, *plan.followed})
        rule.updated_at = now
    for row in repo.rows(session, connection_id, plan.suspended):
        if row.state not in (SubscriptionState.REMOVED, SubscriptionState.SUSPENDED):
            if row.exact_id is not None:
                plan.held.append((row.division, row.exact_id))
            row.state, row.last_error, row.last_reconciled_at = SubscriptionState.SUSPENDED, REVOKED, now
    for row in repo.rows(session, connection_id, plan.resumed):
        if row.state == SubscriptionState.SUSPENDED:
            lane = row.topic.lower() in lanes
            row.state = SubscriptionState.SYNC_ONLY if lane else SubscriptionState.PENDING
            row.exact_id, row.last_error, row.last_reconciled_at = None, None, now
            plan.backfill.append((row.division, row.topic, False))
    return plan


def delta_sync_by_name(settings: Settings) -> Backfill:
    """Queue `sync`'s delta sync task for a lane, as beat does, on the events queue."""

    def start(connection_id: int, division: int, topic: str, full: bool) -> None:
        args = [connection_id, division, topic, full]
        producer(settings).send_task(DELTA_SYNC, args=args, queue=EVENTS_QUEUE)

    return start
