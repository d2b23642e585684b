"""Changes into every sink in the caller's transaction; pushes out of the delivery log, per key in version order.

The fetching side calls `accept(session, changes, settings)` inside its transaction, commits, then calls
`dispatch_pending(settings, event_ids)`. That sends one `workers.deliver` task per push lane (sink, division, topic,
key); the task runs `deliver_lane`, which holds the lane's Redis lock and walks the lane's log rows oldest version
first: pending → sending (committed before the POST: the fence) → delivered, or back to pending with a backoff,
or dead after `delivery_max_attempts`. A version older than one already delivered is superseded, never sent.
Before each POST the target's circuit breaker (`workers.breaker`) may hold the lane: the head waits, unsent and
uncounted, until the breaker lets a probe through, or, after a 410 Gone, until an operator resumes the target.
`sweep_lanes` finds rows a lost message left behind, so Redis losing a task is a delay, not a loss.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from kombu.exceptions import OperationalError
from pydantic import SecretStr
from redis import Redis, RedisError
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery.breaker import Breaker
from delivery.changes import ChangeRecord
from delivery.models import Delivery
from delivery.sinks import Outgoing, PushFailed, PushSink, Sink, TargetGone, load_sinks
from runtime.broker import producer
from runtime.contracts import DELIVER, DELIVERIES_QUEUE
from runtime.db import stored_utc, utc_now
from runtime.locks import LaneLock
from runtime.logging import log_event
from runtime.settings import Settings

__all__ = [
    "AcceptResult",
    "DeliveryContext",
    "LaneOutcome",
    "PushLane",
    "accept",
    "backoff_seconds",
    "deliver_lane",
    "dispatch_lanes",
    "dispatch_pending",
    "lane_of_event",
    "sinks_for",
    "sweep_lanes",
]

log = logging.getLogger(__name__)

# Seconds a task waits before trying a lane that another task holds.
BUSY_RETRY_SECONDS = 2.0
SWEEP_BATCH = 1000


@dataclass(frozen=True)
class PushLane:
    """Deliveries to one push sink of one record: they go out one at a time, in version order."""

    sink: str
    division: int
    topic: str
    key: str

    def lock_key(self, prefix: str) -> str:
        return f"{prefix}delivery:{self.sink}:{self.division}:{self.topic}:{self.key}:lock"


@dataclass(frozen=True)
class AcceptResult:
    """What `accept` did: changes applied (or logged) per sink, and the push lanes to dispatch after the commit."""

    applied: dict[str, int]
    lanes: tuple[PushLane, ...]


@dataclass(frozen=True)
class LaneOutcome:
    delivered: int = 0
    superseded: int = 0
    dead: int = 0
    retry_in: float | None = None  # the lane's head failed: try again after this many seconds
    busy: bool = False  # another task holds the lane


# -- accepting, inside the caller's transaction
_sinks_cache: dict[str, list[Sink]] = {}
_sinks_guard = threading.Lock()


def sinks_for(settings: Settings) -> list[Sink]:
    """The configured sinks, built once per distinct settings (entry points are slow to scan on every call)."""
    fingerprint = _fingerprint(settings)
    with _sinks_guard:
        if fingerprint not in _sinks_cache:
            _sinks_cache[fingerprint] = load_sinks(settings)
        return _sinks_cache[fingerprint]


def _fingerprint(settings: Settings) -> str:
    # model_dump_json masks secrets, and two settings differing only in PUSH_SECRET must not share sinks.
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in settings.model_dump().items()}
    return repr(sorted(values.items()))


def accept(session: Session, changes: Sequence[ChangeRecord], settings: Settings) -> AcceptResult:
    """Every configured sink takes `changes` within `session`'s transaction (the caller commits).

    Idempotent: the mirror moves only to a strictly newer version, and the delivery log holds one row per (sink,
    event id), so accepting the same changes again changes nothing and logs nothing new.
    """
    sinks = sinks_for(settings)
    applied = {sink.name: sink.accept(session, changes) for sink in sinks}
    keys = dict.fromkeys((c.division, c.topic, c.key) for c in changes)
    lanes = tuple(PushLane(s.name, d, t, k) for s in sinks if isinstance(s, PushSink) for d, t, k in keys)
    return AcceptResult(applied, lanes)


# -- dispatching, after the caller committed
def lane_of_event(sink: str, event_id: str) -> PushLane:
    """The lane of an event id `division:topic:key:version:action` (see `workers.changes.event_id_of`)."""
    division, topic, rest = event_id.split(":", 2)
    key, _version, _action = rest.rsplit(":", 2)
    return PushLane(sink, int(division), topic, key)


def dispatch_pending(settings: Settings, event_ids: Iterable[str]) -> int:
    """Send one delivery task per push lane the events touch; returns how many were sent.

    Call it after the commit of `accept`. When Redis cannot take a task it logs and returns: the rows are committed,
    and the sweeper dispatches them later.
    """
    names = [s.name for s in sinks_for(settings) if isinstance(s, PushSink)]
    lanes = dict.fromkeys(lane_of_event(name, event_id) for event_id in event_ids for name in names)
    return dispatch_lanes(settings, lanes)


def dispatch_lanes(settings: Settings, lanes: Iterable[PushLane]) -> int:
    sent = 0
    for lane in lanes:
        try:
            producer(settings).send_task(
                DELIVER, args=[lane.sink, lane.division, lane.topic, lane.key], queue=DELIVERIES_QUEUE
            )
        except (OperationalError, RedisError, OSError) as exc:
            log_event(
                log,
                "workers.delivery.dispatch_failed",
                logging.WARNING,
                sink=lane.sink,
                division=lane.division,
                topic=lane.topic,
                key=lane.key,
                error=str(exc),
            )
            continue
        sent += 1
    return sent


# -- delivering one lane, in a task
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
    """Exponential in the attempts made, capped, with jitter (half to full), and never below the target's wish."""
    ceiling = min(settings.delivery_backoff_max_seconds, settings.delivery_backoff_seconds * 2.0 ** (attempts - 1))
    wait = ceiling * (0.5 + random.random() / 2)
    # A wish that is not a finite, positive number of seconds is ignored; a huge one waits the cap.
    wish = retry_after if retry_after is not None and math.isfinite(retry_after) and retry_after > 0 else 0.0
    return max(wait, min(wish, settings.delivery_backoff_max_seconds))


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
                select(func.max(Delivery.version)).where(*_in_lane(lane), Delivery.state == "delivered")
            )
            if newest is not None and head.version < newest:
                superseded += _finish(session, head.id, "superseded", f"version {newest} was delivered first")
                continue
            if head.state == "sending" and head.attempts >= ctx.settings.delivery_max_attempts:
                # The last attempt never finished (its worker died every time): stop rather than loop forever.
                dead += _finish(session, head.id, "dead", head.last_error or "the last attempt did not finish")
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
            delivered += _finish(session, head.id, "delivered", None)


def _in_lane(lane: PushLane) -> tuple[ColumnElement[bool], ...]:
    return (
        Delivery.sink == lane.sink,
        Delivery.division == lane.division,
        Delivery.topic == lane.topic,
        Delivery.key == lane.key,
    )


def _live_rows(lane: PushLane) -> Select[Delivery]:
    return select(Delivery).where(*_in_lane(lane), Delivery.state.in_(("pending", "sending")))


def _start(session: Session, row: Delivery) -> Outgoing | None:
    """Mark the row as sending and count the attempt, only if nobody moved it since we read it (the fence)."""
    attempt = row.attempts + 1  # read first: the ORM update below refreshes `row` in place
    change = ChangeRecord(row.division, row.topic, row.key, row.action, row.record, row.version, row.event_id)
    outgoing = Outgoing(change, stored_utc(row.created_at), attempt)
    moved = session.execute(
        update(Delivery)
        .where(Delivery.id == row.id, Delivery.state == row.state, Delivery.attempts == row.attempts)
        .values(state="sending", attempts=attempt, updated_at=utc_now())
    )
    session.commit()
    return outgoing if _rowcount(moved) == 1 else None


def _failed(settings: Settings, session: Session, row_id: int, attempts: int, exc: PushFailed) -> float | None:
    """Record a failed attempt: back to pending after a backoff (returned), or dead at the limit (None)."""
    if attempts >= settings.delivery_max_attempts:
        _finish(session, row_id, "dead", str(exc))
        return None
    wait = backoff_seconds(settings, attempts, exc.retry_after)
    now = utc_now()
    session.execute(
        update(Delivery)
        .where(Delivery.id == row_id, Delivery.state == "sending")
        .values(state="pending", last_error=str(exc), due_at=now + timedelta(seconds=wait), updated_at=now)
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
            .where(Delivery.id == row_id, Delivery.state == "pending", Delivery.due_at < due)
            .values(due_at=due)
            .execution_options(synchronize_session=False)  # SQLite hands back naive datetimes to compare
        )
        session.commit()
    return wait


def _gone(session: Session, row_id: int, exc: TargetGone) -> None:
    """The target answered 410: the row waits as pending, and that attempt does not count against the limit."""
    session.execute(
        update(Delivery)
        .where(Delivery.id == row_id, Delivery.state == "sending")
        .values(state="pending", attempts=Delivery.attempts - 1, last_error=str(exc), updated_at=utc_now())
    )
    session.commit()
    log_event(log, "workers.delivery.target_gone", logging.ERROR, delivery=row_id, error=str(exc))


def _finish(session: Session, row_id: int, state: str, error: str | None) -> int:
    """Move a live row to a final state; 1 when it moved (`delivered` only from `sending`)."""
    now = utc_now()
    values: dict[str, object] = {"state": state, "updated_at": now}
    if state == "delivered":
        values.update(delivered_at=now, last_error=None)
        live: tuple[str, ...] = ("sending",)
    else:
        values.update(last_error=error)
        live = ("pending", "sending")
    moved = _rowcount(
        session.execute(update(Delivery).where(Delivery.id == row_id, Delivery.state.in_(live)).values(**values))
    )
    session.commit()
    if moved and state != "delivered":
        level = logging.ERROR if state == "dead" else logging.INFO
        log_event(log, f"workers.delivery.{state}", level, delivery=row_id, error=error)
    return moved


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


# -- the sweeper
def sweep_lanes(settings: Settings, session: Session, *, skip: Sequence[str] = ()) -> list[PushLane]:
    """Lanes with a pending row due for longer than `delivery_sweep_after_seconds`, or a row left `sending` as long
    (its worker died and its message is gone): their tasks were lost or are late, so they are dispatched again.
    Sinks in `skip` (stopped targets) are left out: their rows wait for `deadletters resume`."""
    cutoff = utc_now() - timedelta(seconds=settings.delivery_sweep_after_seconds)
    stale = or_(
        and_(Delivery.state == "pending", Delivery.due_at <= cutoff),
        and_(Delivery.state == "sending", Delivery.updated_at <= cutoff),
    )
    query = select(Delivery.sink, Delivery.division, Delivery.topic, Delivery.key).where(stale).distinct()
    if skip:
        query = query.where(Delivery.sink.not_in(list(skip)))
    return [PushLane(*row) for row in session.execute(query.limit(SWEEP_BATCH))]
