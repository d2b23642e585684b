"""Pushing one lane, in a task: its lock and breaker, version order, the fence before each POST, backoff, dead letters.

`deliver_lane` holds the lane's Redis lock and walks the lane's log rows oldest version first: pending → sending
(committed before the POST: the fence) → delivered, or back to pending with a backoff, or dead after
`delivery_max_attempts`. A version older than one already delivered is superseded, never sent. Before each POST the
target's circuit breaker (`delivery.breaker`) may hold the lane: the head waits, unsent and uncounted, until the
breaker lets a probe through, or, after a 410 Gone, until an operator resumes the target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from redis import Redis
from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery.breaker import Breaker
from delivery.changes import ChangeRecord
from delivery.models import LIVE_STATES, Delivery, DeliveryState
from delivery.outbox import PushLane, sinks_for
from delivery.sinks import Outgoing, PushFailed, PushSink, TargetGone
from runtime.db import stored_utc, utc_now
from runtime.locks import LaneLock
from runtime.logging import log_event
from runtime.retry import backoff
from runtime.settings import Settings

__all__ = ["BUSY_RETRY_SECONDS", "DeliveryContext", "LaneOutcome", "backoff_seconds", "deliver_lane"]

log = logging.getLogger(__name__)

# Seconds a task waits before trying a lane that another task holds.
BUSY_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class LaneOutcome:
    delivered: int = 0
    superseded: int = 0
    dead: int = 0
    retry_in: float | None = None  # the lane's head failed: try again after this many seconds
    busy: bool = False  # another task holds the lane


@dataclass
class DeliveryContext:
    """What delivering needs: settings, sessions, Redis (lane locks, breakers) and the push sinks by name."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: Redis
    push_sinks: dict[str, PushSink] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, sessions: sessionmaker[Session], client: Redis) -> DeliveryContext:
        sinks = {s.name: s for s in sinks_for(settings) if isinstance(s, PushSink)}
        return cls(settings, sessions, client, sinks)

    def breaker(self, sink: str) -> Breaker:
        """The breaker of a push sink's target (its URL, for the `http` sink; one per sink otherwise)."""
        target = str(getattr(self.push_sinks.get(sink), "url", sink))
        s = self.settings
        return Breaker(
            self.redis,
            s.redis_prefix,
            sink,
            target,
            failures=s.delivery_breaker_failures,
            cooldown=s.delivery_breaker_cooldown_seconds,
            probe_ttl=self.lock_ttl_seconds,
            probe_wait=BUSY_RETRY_SECONDS,
        )

    @property
    def lock_ttl_seconds(self) -> float:
        # Longer than one attempt (the POST's timeout plus the bookkeeping around it); refreshed before each.
        return max(60.0, 4 * self.settings.push_timeout_seconds)


def backoff_seconds(settings: Settings, attempts: int, retry_after: float | None = None) -> float:
    """Exponential in the attempts made, capped, with jitter (half to full), and never below the target's wish
    (`runtime.retry.backoff`: a wish that is not a finite, positive number of seconds is ignored)."""
    base, cap = settings.delivery_backoff_seconds, settings.delivery_backoff_max_seconds
    return backoff(attempts - 1, base=base, cap=cap, wish=retry_after)


def deliver_lane(ctx: DeliveryContext, lane: PushLane, owner: str) -> LaneOutcome:
    """Push the lane's pending changes in version order until it is empty or its head must wait.

    `owner` is the task id: a redelivered task (same id) takes its own lock back at once after a crash.
    """
    sink = ctx.push_sinks.get(lane.sink)
    if sink is None:
        log_event(log, "workers.delivery.sink_not_configured", logging.WARNING, sink=lane.sink)
        return LaneOutcome()
    lock = LaneLock(ctx.redis, lane.lock_key(ctx.settings.redis_prefix), owner, ctx.lock_ttl_seconds)
    if not lock.acquire():
        return LaneOutcome(busy=True)
    try:
        return _drain(ctx, sink, lane, lock, ctx.breaker(lane.sink))
    finally:
        lock.release()


def _drain(ctx: DeliveryContext, sink: PushSink, lane: PushLane, lock: LaneLock, breaker: Breaker) -> LaneOutcome:
    delivered = superseded = dead = 0

    def outcome(retry_in: float | None = None) -> LaneOutcome:
        return LaneOutcome(delivered, superseded, dead, retry_in)

    while True:
        with ctx.sessions() as session:
            head = session.scalars(_live_rows(lane).order_by(Delivery.version, Delivery.id).limit(1)).first()
            if head is None:
                return outcome()
            newest = session.scalar(
                select(func.max(Delivery.version)).where(*_in_lane(lane), Delivery.state == DeliveryState.DELIVERED)
            )
            if newest is not None and head.version < newest:
                superseded += _finish(
                    session, head.id, DeliveryState.SUPERSEDED, f"version {newest} was delivered first"
                )
                continue
            if head.state == DeliveryState.SENDING and head.attempts >= ctx.settings.delivery_max_attempts:
                # The last attempt never finished (its worker died every time): stop rather than loop forever.
                dead += _finish(
                    session, head.id, DeliveryState.DEAD, head.last_error or "the last attempt did not finish"
                )
                continue
            if stored_utc(head.due_at) > utc_now():
                # The task that saw it fail has scheduled the retry; the sweeper stands behind that.
                return outcome()
            gate = breaker.gate(lock.owner)
            if not gate.allowed:
                return outcome(_hold(session, head.id, gate.wait))
            if not lock.refresh():
                return outcome()  # our lock lapsed: whoever holds it now carries on
            attempt = _start(session, head)
            if attempt is None:
                return outcome()  # the row moved under us: another holder is at work
        try:
            sink.push(attempt)  # outside any transaction
        except TargetGone as exc:
            with ctx.sessions() as session:
                _gone(session, head.id, exc)
            breaker.stop(str(getattr(sink, "shown_url", lane.sink)), str(exc))
            return outcome()
        except PushFailed as exc:
            if breaker.failed():
                log_event(log, "workers.delivery.breaker_opened", logging.WARNING, sink=lane.sink)
            with ctx.sessions() as session:
                retry_in = _failed(ctx.settings, session, head.id, attempt.attempt, exc)
            if retry_in is None:
                dead += 1
                continue  # a dead letter no longer holds the lane up
            return outcome(retry_in)
        breaker.succeeded()
        with ctx.sessions() as session:
            delivered += _finish(session, head.id, DeliveryState.DELIVERED, None)


def _in_lane(lane: PushLane) -> tuple[ColumnElement[bool], ...]:
    return (
        Delivery.sink == lane.sink,
        Delivery.division == lane.division,
        Delivery.topic == lane.topic,
        Delivery.key == lane.key,
    )


def _live_rows(lane: PushLane) -> Select[Delivery]:
    return select(Delivery).where(*_in_lane(lane), Delivery.state.in_(LIVE_STATES))


def _start(session: Session, row: Delivery) -> Outgoing | None:
    """Mark the row as sending and count the attempt, only if nobody moved it since we read it (the fence)."""
    attempt = row.attempts + 1  # read first: the ORM update below refreshes `row` in place
    change = ChangeRecord(
        row.division, row.topic, row.key, row.action, row.record, row.version, row.event_id, row.origin
    )
    outgoing = Outgoing(change, stored_utc(row.created_at), attempt)
    moved = session.execute(
        update(Delivery)
        .where(Delivery.id == row.id, Delivery.state == row.state, Delivery.attempts == row.attempts)
        .values(state=DeliveryState.SENDING, attempts=attempt, updated_at=utc_now())
    )
    session.commit()
    return outgoing if _rowcount(moved) == 1 else None


def _failed(settings: Settings, session: Session, row_id: int, attempts: int, exc: PushFailed) -> float | None:
    """Record a failed attempt: back to pending after a backoff (returned), or dead at the limit (None)."""
    if attempts >= settings.delivery_max_attempts:
        _finish(session, row_id, DeliveryState.DEAD, str(exc))
        return None
    wait = backoff_seconds(settings, attempts, exc.retry_after)
    now = utc_now()
    session.execute(
        update(Delivery)
        .where(Delivery.id == row_id, Delivery.state == DeliveryState.SENDING)
        .values(state=DeliveryState.PENDING, last_error=str(exc), due_at=now + timedelta(seconds=wait), updated_at=now)
    )
    session.commit()
    log_event(
        log,
        "workers.delivery.retry",
        logging.WARNING,
        delivery=row_id,
        attempts=attempts,
        retry_in=round(wait, 3),
        error=str(exc),
    )
    return wait


def _hold(session: Session, row_id: int, wait: float | None) -> float | None:
    """The breaker holds the lane: its head waits `wait` seconds (moved later so the sweeper leaves it alone), or,
    for a stopped target (None), until `deadletters resume` dispatches the lane again."""
    if wait is not None:
        due = utc_now() + timedelta(seconds=wait)
        session.execute(
            update(Delivery)
            .where(Delivery.id == row_id, Delivery.state == DeliveryState.PENDING, Delivery.due_at < due)
            .values(due_at=due)
            .execution_options(synchronize_session=False)  # SQLite hands back naive datetimes to compare
        )
        session.commit()
    return wait


def _gone(session: Session, row_id: int, exc: TargetGone) -> None:
    """The target answered 410: the row waits as pending, and that attempt does not count against the limit."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == row_id, Delivery.state == DeliveryState.SENDING)
        .values(state=DeliveryState.PENDING, attempts=Delivery.attempts - 1, last_error=str(exc), updated_at=utc_now())
    )
    session.commit()
    log_event(log, "workers.delivery.target_gone", logging.ERROR, delivery=row_id, error=str(exc))


def _finish(session: Session, row_id: int, state: str, error: str | None) -> int:
    """Move a live row to a final state; 1 when it moved (`delivered` only from `sending`)."""
    now = utc_now()
    values: dict[str, object] = {"state": state, "updated_at": now}
    if state == DeliveryState.DELIVERED:
        values.update(delivered_at=now, last_error=None)
        live: tuple[str, ...] = (DeliveryState.SENDING,)
    else:
        values.update(last_error=error)
        live = LIVE_STATES
    moved = _rowcount(
        session.execute(update(Delivery).where(Delivery.id == row_id, Delivery.state.in_(live)).values(**values))
    )
    session.commit()
    if moved and state != DeliveryState.DELIVERED:
        level = logging.ERROR if state == DeliveryState.DEAD else logging.INFO
        log_event(log, f"workers.delivery.{state}", level, delivery=row_id, error=error)
    return moved


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0))
