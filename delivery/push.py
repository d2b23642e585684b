"""Pushing a batch of lanes, in a task: their locks and breaker, version order, the fence before the POSTs, backoff,
dead letters.

`deliver_lanes` takes the Redis locks of up to `delivery_batch_keys` lanes (keys of one sink, division and topic) in
one call and walks them in rounds: each round reads every lane's oldest live row in one statement, marks the heads
sending in one statement and one commit (the fence: committed before any of their POSTs), POSTs them (a few side
by side once the target keeps answering 2xx), then marks those that went through delivered in one statement and one
commit. A lane's next version waits for the
next round, so per key nothing overtakes an earlier version; a version older than one already delivered is
superseded, never sent; a failed POST puts its row back to pending with a backoff, or dead after
`delivery_max_attempts`. Before each round the target's circuit breaker (`delivery.breaker`) may hold the heads:
they wait, unsent and uncounted, until the breaker lets a probe through, or, after a 410 Gone, until an operator
resumes the target. `deliver_lane` is the same for one lane.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from redis import Redis
from sqlalchemy import ColumnElement, func, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from delivery.breaker import Breaker
from delivery.changes import ChangeRecord
from delivery.locks import LaneLocks
from delivery.models import LIVE_STATES, Delivery, DeliveryState, newest_delivered_version
from delivery.outbox import PushLane, sinks_for
from delivery.sinks import Outgoing, PushFailed, PushSink, TargetGone
from runtime.db import stored_utc, utc_now
from runtime.logging import log_event
from runtime.metrics import record_deliveries
from runtime.retry import backoff
from runtime.settings import Settings

__all__ = [
    "BUSY_RETRY_SECONDS",
    "BatchOutcome",
    "DeliveryContext",
    "LaneOutcome",
    "backoff_seconds",
    "deliver_lane",
    "deliver_lanes",
]

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


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch did; `retry` maps a key to the seconds its head must wait, `busy` lists keys others hold."""

    delivered: int = 0
    superseded: int = 0
    dead: int = 0
    retry: dict[str, float] = field(default_factory=dict)
    busy: tuple[str, ...] = ()


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
        # Longer than one attempt (the POST's timeout plus the bookkeeping around it); renewed before a POST once
        # less than half of it is left.
        return max(60.0, 4 * self.settings.push_timeout_seconds)


def backoff_seconds(settings: Settings, attempts: int, retry_after: float | None = None) -> float:
    """Exponential in the attempts made, capped, with jitter (half to full), and never below the target's wish
    (`runtime.retry.backoff`: a wish that is not a finite, positive number of seconds is ignored)."""
    base, cap = settings.delivery_backoff_seconds, settings.delivery_backoff_max_seconds
    return backoff(attempts - 1, base=base, cap=cap, wish=retry_after)


def deliver_lane(ctx: DeliveryContext, lane: PushLane, owner: str) -> LaneOutcome:
    """Push one lane's pending changes in version order until it is empty or its head must wait."""
    batch = deliver_lanes(ctx, [lane], owner)
    return LaneOutcome(
        batch.delivered, batch.superseded, batch.dead, batch.retry.get(lane.key), busy=lane.key in batch.busy
    )


def deliver_lanes(ctx: DeliveryContext, lanes: Sequence[PushLane], owner: str) -> BatchOutcome:
    """Push the pending changes of `lanes` (one sink, division and topic) in version order per key, until each is
    empty or its head must wait.

    `owner` is the task id: a redelivered task (same id) takes its own locks back at once after a crash.
    """
    if not lanes:
        return BatchOutcome()
    first = lanes[0]
    if any((lane.sink, lane.division, lane.topic) != (first.sink, first.division, first.topic) for lane in lanes):
        raise ValueError("a batch holds the lanes of one sink, division and topic")
    sink = ctx.push_sinks.get(first.sink)
    if sink is None:
        log_event(log, "workers.delivery.sink_not_configured", logging.WARNING, sink=first.sink)
        return BatchOutcome()
    by_lock = {lane.lock_key(ctx.settings.redis_prefix): lane for lane in dict.fromkeys(lanes)}
    locks = LaneLocks(ctx.redis, owner, ctx.lock_ttl_seconds)
    taken = set(locks.take(list(by_lock)))
    busy = tuple(lane.key for lock, lane in by_lock.items() if lock not in taken)
    try:
        batch = _Batch(ctx, sink, first, locks, by_lock, ctx.breaker(first.sink))
        batch.run([lane.key for lock, lane in by_lock.items() if lock in taken])
    finally:
        locks.release()
    record_deliveries(first.sink, delivered=batch.delivered, superseded=batch.superseded, dead=batch.dead)
    return BatchOutcome(batch.delivered, batch.superseded, batch.dead, batch.retry, busy)


@dataclass
class _Head:
    """A lane's oldest live row as read at the start of a round, and the newest version delivered in its lane."""

    row: Delivery
    newest: int | None


class _Batch:
    """The rounds of one batch; the counters become its outcome."""

    def __init__(
        self,
        ctx: DeliveryContext,
        sink: PushSink,
        lane: PushLane,
        locks: LaneLocks,
        by_lock: dict[str, PushLane],
        breaker: Breaker,
    ) -> None:
        self.ctx, self.sink, self.lane, self.locks, self.breaker = ctx, sink, lane, locks, breaker
        self._lock_of = {lane.key: lock for lock, lane in by_lock.items()}
        self.delivered = self.superseded = self.dead = 0
        self.retry: dict[str, float] = {}
        self._unreported_success = False  # a success since the breaker last heard from us
        self._lost: set[str] = set()  # locks that lapsed and went to another owner
        self._concurrency = max(1, int(getattr(sink, "concurrent_pushes", 1)))
        self._pool: ThreadPoolExecutor | None = None

    def run(self, keys: list[str]) -> None:
        active = list(keys)
        try:
            while active:
                active = self._round(active)
        finally:
            if self._pool is not None:
                self._pool.shutdown()
        self._report_success()

    def _round(self, keys: list[str]) -> list[str]:
        """One head per key: settle the rows that need no POST, POST the rest; returns the keys to go on with."""
        settings = self.ctx.settings
        with self.ctx.sessions() as session:
            heads = _heads(session, self.lane, keys)
            go_on: list[str] = []
            due: list[Delivery] = []
            now = utc_now()
            for key in keys:
                head = heads.get(key)
                if head is None:
                    continue  # nothing left in this lane
                row = head.row
                if head.newest is not None and row.version < head.newest:
                    self.superseded += _finish(
                        session, row.id, DeliveryState.SUPERSEDED, f"version {head.newest} was delivered first"
                    )
                    go_on.append(key)
                elif row.state == DeliveryState.SENDING and row.attempts >= settings.delivery_max_attempts:
                    # The last attempt never finished (its worker died every time): stop rather than loop forever.
                    self.dead += _finish(
                        session, row.id, DeliveryState.DEAD, row.last_error or "the last attempt did not finish"
                    )
                    go_on.append(key)
                elif stored_utc(row.due_at) <= now:
                    due.append(row)
                # else: not due; the task that saw it fail has scheduled the retry, the sweeper stands behind that.
            if not due:
                return go_on
            gate = self.breaker.gate(self.locks.owner)
            if not gate.allowed:
                wait = _hold(session, [r.id for r in due], gate.wait)
                if wait is not None:
                    self.retry.update((r.key, wait) for r in due)
                return go_on  # the target waits; a lane whose head was settled shows its next head to the gate
            if gate.probe:
                go_on += [r.key for r in due[1:]]  # one probe at a time; the others look at the gate again
                due = due[:1]
            due = [r for r in due if self._holds(r.key)]  # a lane whose lock lapsed: its new holder carries on
            started = _start_many(session, due)
        go_on += self._post(started)
        if gate.probe:
            self._report_success()  # a probe that went through closes the breaker for the next round at once
        return go_on

    def _holds(self, key: str) -> bool:
        """Whether the key's lock is still ours, renewing every lock once less than half of its lease is left."""
        if self.locks.lease_left() < self.locks.ttl / 2:
            self._lost.update(self.locks.refresh())
        return self._lock_of[key] not in self._lost

    def _post(self, started: list[_Started]) -> list[str]:
        """POST the started heads (outside any transaction), a window of them at a time, then record them; returns
        the keys to go on with.

        Each has its own key, so a window's POSTs may overlap (`concurrent_pushes` of the sink, 1 unless it says
        otherwise). The window starts at one POST and doubles while they succeed; a failure brings it back to one, so
        a failing target sees the breaker's failures one at a time and nothing more.
        """
        done: list[_Started] = []
        go_on: list[str] = []
        rest, window, gone = list(started), 1, False
        while rest:
            # A lane whose lock lapsed is left out: its new holder sends the row left sending, under the same id.
            chunk = [a for a in rest[:window] if self._holds(a.key)]
            del rest[:window]
            opened = failed = False
            for attempt, error in zip(chunk, self._send(chunk), strict=True):
                if error is None:
                    self._unreported_success = True
                    done.append(attempt)
                    go_on.append(attempt.key)
                    continue
                failed = True
                if isinstance(error, TargetGone):
                    with self.ctx.sessions() as session:
                        _gone(session, attempt.row_id, error)
                    if not gone:
                        self.breaker.stop(str(getattr(self.sink, "shown_url", self.lane.sink)), str(error))
                    gone = True
                    continue
                self._report_success()  # the breaker counts failures in a row: the successes before this one first
                if self.breaker.failed():
                    opened = True
                    log_event(log, "workers.delivery.breaker_opened", logging.WARNING, sink=self.lane.sink)
                with self.ctx.sessions() as session:
                    retry_in = _failed(self.ctx.settings, session, attempt.row_id, attempt.outgoing.attempt, error)
                if retry_in is None:
                    self.dead += 1
                    go_on.append(attempt.key)  # a dead letter no longer holds the lane up
                else:
                    self.retry[attempt.key] = retry_in
            if gone or opened:
                with self.ctx.sessions() as session:
                    _unsend(session, [a.row_id for a in rest])  # never POSTed: unsent and uncounted
                go_on += [a.key for a in rest]  # the next round's gate holds them
                rest = []
            window = 1 if failed else min(2 * window, self._concurrency)
        self._settle(done)
        return [] if gone else go_on

    def _send(self, chunk: list[_Started]) -> list[PushFailed | None]:
        """POST each, side by side when more than one; each one's failure, or None, in order."""
        if len(chunk) <= 1:
            return [self._push(a) for a in chunk]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="push")
        return list(self._pool.map(self._push, chunk))

    def _push(self, attempt: _Started) -> PushFailed | None:
        try:
            self.sink.push(attempt.outgoing)
        except PushFailed as exc:
            return exc
        return None

    def _settle(self, done: list[_Started]) -> None:
        if done:
            with self.ctx.sessions() as session:
                self.delivered += _delivered(session, [a.row_id for a in done])

    def _report_success(self) -> None:
        if self._unreported_success:
            self.breaker.succeeded()
            self._unreported_success = False


def _in_lane(lane: PushLane) -> tuple[ColumnElement[bool], ...]:
    return (Delivery.sink == lane.sink, Delivery.division == lane.division, Delivery.topic == lane.topic)


def _heads(session: Session, lane: PushLane, keys: Sequence[str]) -> dict[str, _Head]:
    """Each key's oldest live row and its lane's newest delivered version, in one statement."""
    newest = newest_delivered_version()
    # Only the heads come back, however many versions a hot key has waiting.
    order = func.row_number().over(partition_by=Delivery.key, order_by=(Delivery.version, Delivery.id))
    ranked = (
        select(Delivery.id, order.label("place"))
        .where(*_in_lane(lane), Delivery.key.in_(list(keys)), Delivery.state.in_(LIVE_STATES))
        .subquery()
    )
    query = select(Delivery, newest).join(ranked, ranked.c.id == Delivery.id).where(ranked.c.place == 1)
    return {row.key: _Head(row, version) for row, version in session.execute(query)}


@dataclass(frozen=True)
class _Started:
    """A row marked sending, and the attempt to POST."""

    row_id: int
    outgoing: Outgoing

    @property
    def key(self) -> str:
        return self.outgoing.change.key


def _started(row: Delivery) -> _Started:
    change = ChangeRecord(
        row.division, row.topic, row.key, row.action, row.record, row.version, row.event_id, row.origin
    )
    return _Started(row.id, Outgoing(change, stored_utc(row.created_at), row.attempts + 1))


def _start(session: Session, row: Delivery) -> Outgoing | None:
    """Mark one row as sending and count the attempt, only if nobody moved it since we read it (the fence)."""
    started = _start_many(session, [row])
    return started[0].outgoing if started else None


def _start_many(session: Session, rows: Sequence[Delivery]) -> list[_Started]:
    """Mark the rows as sending and count their attempts in one statement and one commit, each only if nobody moved
    it since we read it (the fence); returns those that moved, in the given order."""
    if not rows:
        return []
    wanted = [_started(r) for r in rows]  # read first: nothing below may refresh the rows
    seen = [(r.id, r.state, r.attempts) for r in rows]
    moved = session.execute(
        update(Delivery)
        .where(tuple_(Delivery.id, Delivery.state, Delivery.attempts).in_(seen))
        .values(state=DeliveryState.SENDING, attempts=Delivery.attempts + 1, updated_at=utc_now())
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    ids = set(moved.scalars())
    session.commit()
    return [o for o in wanted if o.row_id in ids]


def _delivered(session: Session, ids: Sequence[int]) -> int:
    """Mark rows delivered (only from `sending`) in one statement and one commit; returns how many moved."""
    now = utc_now()
    moved = _rowcount(
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(ids)), Delivery.state == DeliveryState.SENDING)
            .values(state=DeliveryState.DELIVERED, updated_at=now, delivered_at=now, last_error=None)
            .execution_options(synchronize_session=False)
        )
    )
    session.commit()
    return moved


def _unsend(session: Session, ids: Sequence[int]) -> None:
    """Rows marked sending whose POST was never made go back to pending, the attempt not counted."""
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(ids)), Delivery.state == DeliveryState.SENDING)
            .values(state=DeliveryState.PENDING, attempts=Delivery.attempts - 1, updated_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        session.commit()


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


def _hold(session: Session, ids: Sequence[int], wait: float | None) -> float | None:
    """The breaker holds the lanes: their heads wait `wait` seconds (moved later so the sweeper leaves them alone),
    or, for a stopped target (None), until `deadletters resume` dispatches the lanes again."""
    if wait is not None:
        due = utc_now() + timedelta(seconds=wait)
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(ids)), Delivery.state == DeliveryState.PENDING, Delivery.due_at < due)
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
    """Move a live row to a final state other than delivered; 1 when it moved."""
    moved = _rowcount(
        session.execute(
            update(Delivery)
            .where(Delivery.id == row_id, Delivery.state.in_(LIVE_STATES))
            .values(state=state, updated_at=utc_now(), last_error=error)
        )
    )
    session.commit()
    if moved:
        level = logging.ERROR if state == DeliveryState.DEAD else logging.INFO
        log_event(log, f"workers.delivery.{state}", level, delivery=row_id, error=error)
    return moved


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


def retry_groups(retry: dict[str, float]) -> list[tuple[float, list[str]]]:
    """The keys to retry, grouped by the whole second their wait ends in: (the group's longest wait, its keys),
    so that one retried task per group finds every head due, and a batch does not fall apart into a task a key."""
    groups: dict[int, list[str]] = {}
    for key, wait in retry.items():
        groups.setdefault(math.ceil(wait), []).append(key)
    return [(max(retry[k] for k in keys), keys) for _, keys in sorted(groups.items())]
