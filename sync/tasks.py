"""Celery tasks that fetch: gather webhook events per lane, flush each lane once per window, delta-sync divisions.

Flow per event: `handle_event` records the key in its lane's pending set; the first event of an idle lane
schedules a `flush` at once (or `coalesce_window_seconds` after the lane's last fetch ended, if that is later). The
flush takes the lane's lock and its pending events, fetches (a sync walk, keyed batches, sync/Deleted) in the
"webhook" budget class, has the sinks accept each call's changes in a transaction, dispatches the pushes, then
advances the cursor; events that arrived meanwhile get one next flush, a window after this one ended. Every task
is idempotent: the mirror upserts by version, the delivery log is unique per (sink, event id), and a retried flush
re-reads from its cursor and its kept events.

Exceptions stay inside this module: `LaneBusy` (another flush or walk owns the lane) is retried, Exact's
`RateLimited` and `ExactUnavailable` are retried later, `NeedsConsent` waits for a new `connect`. A database error
(`SQLAlchemyError`: locked, restarting, away) retries the flush or walk with a capped backoff; a flush's taken events
stay in `processing` meanwhile, so its retry fetches them without a new webhook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Task, shared_task
from sqlalchemy.exc import SQLAlchemyError

from connections.factory import token_manager_from_settings
from connections.queries import connection_ids
from delivery.history import record_webhooks
from delivery.system_events import emit_consent_needed
from exact import CATALOGUE, ExactError, ExactUnavailable, NeedsConsent, RateLimited, budget_class
from runtime.contracts import (
    DELTA_SYNC,
    DELTA_SYNC_ALL,
    DELTA_SYNC_DIVISION,
    EVENTS_QUEUE,
    FLUSH,
    HANDLE_EVENT,
    KEEP_ALIVE,
)
from runtime.logging import log_event
from runtime.metrics import record_flush
from runtime.retry import retry_countdown
from sync.coalesce import Lane
from sync.context import WorkerContext, process_context
from sync.cycle import LanesBusy, move_dates, plan_cycle, run_division, synced
from sync.fetch import epoch_ms
from sync.safety_net import DivisionRun

__all__ = [
    "LaneBusy",
    "delta_sync",
    "delta_sync_all",
    "delta_sync_division",
    "fan_out",
    "fan_out_divisions",
    "flush",
    "flush_lane",
    "handle",
    "handle_event",
    "keep_alive",
    "sync_division",
    "sync_lane",
]

log = logging.getLogger(__name__)

# A lane's holder keeps its lock alive while it runs (`LaneLock.kept`), however long a call waits; a killed
# holder's redelivered task takes it back at once (same task id), anyone else waits for it to expire. Short, because
# the redelivery can fail: a SIGKILL between kombu's BRPOP and its unacked write loses the message, and the lane
# then waits out the TTL (tests/workers/test_kill_stream.py met it with 300 s here).
LANE_LOCK_TTL_SECONDS = 30.0
# Usually a lane's holder finishes within a window; a dead holder's lock only goes when it expires.
BUSY_CAP_SECONDS = 30.0


class LaneBusy(RuntimeError):
    """Another flush or walk holds the lane's cursor."""


# -- the work, as plain functions (tests call these; the tasks below only add Celery's retries)
def handle(ctx: WorkerContext, event: dict[str, Any], schedule: Callable[[Lane, float], None]) -> str:
    """Record one webhook event in its lane; returns what became of it (for logs and tests). `schedule(lane,
    countdown)` queues the lane's flush `countdown` seconds out."""
    division, entity = int(event["division"]), CATALOGUE.get(str(event["topic"]))
    if entity is None:
        # Never silent: a subscription Exact accepted for a topic the catalogue lacks loses every change.
        log_event(log, "workers.event.unknown_topic", logging.WARNING, division=division, topic=event.get("topic"))
        return "unknown-topic"
    connection_id = ctx.connection_for(division, entity.topic)
    if connection_id is None:
        return "untracked"
    lane = Lane(connection_id, division, entity.topic)
    admitted = ctx.coalescer.admit(lane, str(event["key"]), str(event["action"]), _event_ms(event))
    if admitted.outcome == "schedule":
        _schedule(ctx, lane, admitted.countdown, schedule)
        return "scheduled"
    return admitted.outcome


def flush_lane(ctx: WorkerContext, lane: Lane, owner: str, schedule: Callable[[Lane, float], None]) -> int:
    """Fetch everything the lane's pending events point at; returns the number of changes accepted. Events that
    arrived meanwhile are left for one next flush, which `schedule(lane, countdown)` queues."""
    lock = ctx.coalescer.lock(lane, owner, ttl_seconds=LANE_LOCK_TTL_SECONDS)
    if not lock.acquire():
        raise LaneBusy(f"{lane} is held by another flush")
    try:
        with lock.kept():
            batch = ctx.coalescer.take(lane)
            record_webhooks(ctx.sessions, lane.division, lane.topic, batch.updates, batch.deletes)
            accepted = 0
            if batch:
                with budget_class("webhook"):
                    accepted = ctx.lane_sync(lane, on_page=lambda _n: lock.refresh()).flush(batch)
                record_flush(lane.topic, len(batch.updates) + len(batch.deletes), accepted)
            # Only now: a crash above leaves the events for the retry. Atomic with any event's add, so an event
            # arriving as the flush ends either joins the next flush this returns or schedules its own.
            countdown = ctx.coalescer.done(lane, fetched=bool(batch))
    finally:
        lock.release()
    if countdown is not None:
        _schedule(ctx, lane, countdown, schedule)
    return accepted


def _schedule(ctx: WorkerContext, lane: Lane, countdown: float, schedule: Callable[[Lane, float], None]) -> None:
    try:
        schedule(lane, countdown)
    except Exception:
        ctx.coalescer.unschedule(lane)  # the next event schedules it again
        raise


def sync_lane(
    ctx: WorkerContext, lane: Lane, owner: str, *, full: bool = False, on_page: Callable[[int], object] | None = None
) -> int:
    """The delta sync of one lane, under the lane's lock; `on_page` hears of every accepted call."""
    lock = ctx.coalescer.lock(lane, owner, ttl_seconds=LANE_LOCK_TTL_SECONDS)
    if not lock.acquire():
        raise LaneBusy(f"{lane} is held by another flush")

    def page(count: int) -> None:
        lock.refresh()
        if on_page is not None:
            on_page(count)

    try:
        # A full resync (`sync --full`, a division moved) is a backfill; any other walk is delta sync.
        with lock.kept(), budget_class("backfill" if full else "delta"):
            return ctx.lane_sync(lane, on_page=page).walk(full=full)
    finally:
        lock.release()


def fan_out(ctx: WorkerContext, start: Callable[[Lane, bool], None]) -> int:
    """The old cycle (DELTA_SYNC_PER_LANE): one delta sync per synced lane (`subscriptions.queries.synced_lanes`); a
    lane whose division moved starts as a full resync. A lane of a topic the catalogue lacks is skipped, with a
    warning."""
    lanes = synced(ctx)
    moves = move_dates(ctx, lanes)
    for lane in lanes:
        moved = lane.division in moves.get(lane.connection_id, {}) and ctx.cursors.note_move_date(
            lane.connection_id, lane.division, lane.topic, moves[lane.connection_id][lane.division]
        )
        if moved:
            log_event(log, "workers.delta_sync.division_moved", division=lane.division, topic=lane.topic)
        start(lane, moved)
    return len(lanes)


def fan_out_divisions(ctx: WorkerContext, start: Callable[[DivisionRun], None]) -> int:
    """The safety net's cycle: one run per due division (`sync.cycle.plan_cycle`); returns how many."""
    runs = plan_cycle(ctx)
    for run in runs:
        start(run)
    return len(runs)


def sync_division(ctx: WorkerContext, run: DivisionRun, owner: str) -> int:
    """One division's run of the safety net (`sync.cycle.run_division`); lanes held by a flush raise `LanesBusy`."""
    return run_division(ctx, run, owner, ttl_seconds=LANE_LOCK_TTL_SECONDS)


def keep_alive_all(ctx: WorkerContext) -> int:
    """Refresh connections idle for 25 days, before Exact's 30 days expire their refresh tokens."""
    with ctx.sessions() as session:
        ids = connection_ids(session, consented_only=True)
    refreshed = 0
    for connection_id in ids:
        try:
            refreshed += token_manager_from_settings(ctx.settings, ctx.sessions, connection_id).keep_alive()
        except ExactError as exc:
            log_event(log, "workers.keep_alive.failed", logging.ERROR, connection=connection_id, error=exc.message)
    return refreshed


def _event_ms(event: dict[str, Any]) -> int:
    """When the change happened, in epoch ms: Exact's EventCreatedOn (ISO text), else when the receiver took it
    (`received_at`, epoch seconds, or ISO text), else now."""
    for name in ("event_created_on", "received_at"):
        value = event.get(name)
        if name == "received_at" and isinstance(value, int | float):
            return int(value * 1000)
        if isinstance(value, str) and value:
            try:
                return epoch_ms(value)
            except ValueError:
                continue
    return int(datetime.now(UTC).timestamp() * 1000)


def _countdown(ctx: WorkerContext, retries: int, exc: Exception) -> float:
    """The retry's countdown for what stopped the flush or walk (`runtime.retry`: under the visibility timeout)."""
    visibility = ctx.settings.broker_visibility_timeout
    if isinstance(exc, LaneBusy):
        base = max(ctx.settings.coalesce_window_seconds, 1.0)
        return retry_countdown(retries, visibility, base=base, cap=BUSY_CAP_SECONDS)
    if isinstance(exc, RateLimited):
        return retry_countdown(retries, visibility, wish=exc.retry_at - time.time())
    return retry_countdown(retries, visibility)


def _database_wait(ctx: WorkerContext, division: int, topic: str, exc: SQLAlchemyError, retries: int) -> float:
    """The countdown after a database error, logged by class only: SQLAlchemy's text can quote records' values."""
    countdown = _countdown(ctx, retries, exc)
    cause = type(getattr(exc, "orig", None) or exc).__name__  # the driver's class: LockNotAvailable, ...
    fields = {"division": division, "topic": topic, "error": cause, "retry_in": round(countdown, 1)}
    log_event(log, "workers.lane.database_error", logging.WARNING, **fields)
    return countdown


# -- the Celery tasks
@shared_task(name=HANDLE_EVENT, bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def handle_event(self: Task, event: dict[str, Any]) -> str:
    """Thin and idempotent: an event twice is one pending key, and one flush per lane and window."""
    ctx = process_context()

    try:
        outcome = handle(ctx, event, _schedule_flush)
    except SQLAlchemyError as exc:
        # The lane's connection is looked up in the database; acking here would leave the change to the delta sync.
        wait = _database_wait(ctx, int(event["division"]), str(event["topic"]), exc, self.request.retries)
        raise self.retry(countdown=wait) from exc
    if outcome == "untracked":
        log_event(log, "workers.event.untracked", division=event.get("division"), topic=event.get("topic"))
    return outcome


@shared_task(name=FLUSH, bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def flush(self: Task, connection_id: int, division: int, topic: str) -> int:
    ctx = process_context()
    lane = Lane(connection_id, division, topic)
    try:
        return flush_lane(ctx, lane, owner=str(self.request.id), schedule=_schedule_flush)
    except (LaneBusy, RateLimited, ExactUnavailable) as exc:
        raise self.retry(countdown=_countdown(ctx, self.request.retries, exc)) from exc
    except SQLAlchemyError as exc:
        raise self.retry(countdown=_database_wait(ctx, division, topic, exc, self.request.retries)) from exc
    except NeedsConsent:
        # The events stay in `processing`; after a new `connect` the delta sync walks the cursor anyway. The lane is
        # not left scheduled: the first webhook after the `connect` must flush at once, not when the flag expires.
        ctx.coalescer.unschedule(lane)
        log_event(log, "workers.flush.needs_consent", logging.ERROR, connection=connection_id)
        emit_consent_needed(ctx.settings, ctx.sessions)
        return 0


def _schedule_flush(lane: Lane, countdown: float) -> None:
    args = [lane.connection_id, lane.division, lane.topic]
    flush.apply_async(args=args, countdown=countdown, queue=EVENTS_QUEUE)


@shared_task(name=DELTA_SYNC, bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def delta_sync(self: Task, connection_id: int, division: int, topic: str, full: bool = False) -> int:
    """The safety net: everything since the lane's cursor, whether or not a webhook said so."""
    ctx = process_context()
    lane = Lane(connection_id, division, topic)
    try:
        return sync_lane(ctx, lane, owner=str(self.request.id), full=full)
    except (LaneBusy, RateLimited) as exc:
        raise self.retry(countdown=_countdown(ctx, self.request.retries, exc)) from exc
    except SQLAlchemyError as exc:
        raise self.retry(countdown=_database_wait(ctx, division, topic, exc, self.request.retries)) from exc
    except ExactError as exc:
        # The next scheduled run starts again from the same cursor.
        log_event(log, "workers.delta_sync.failed", logging.WARNING, division=division, topic=topic, error=exc.message)
        return 0


@shared_task(name=DELTA_SYNC_DIVISION, bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def delta_sync_division(self: Task, *args: Any) -> int:
    """The safety net for one division: its due lanes walked, one sync/Deleted call for all its lanes."""
    ctx = process_context()
    run = DivisionRun.of(args)
    try:
        return sync_division(ctx, run, owner=str(self.request.id))
    except LanesBusy as exc:
        # Only the lanes a flush held are tried again.
        wait = _countdown(ctx, self.request.retries, LaneBusy(str(exc)))
        raise self.retry(args=exc.rest.args(), countdown=wait) from exc
    except RateLimited as exc:
        raise self.retry(countdown=_countdown(ctx, self.request.retries, exc)) from exc
    except SQLAlchemyError as exc:
        raise self.retry(countdown=_database_wait(ctx, run.division, "*", exc, self.request.retries)) from exc
    except ExactError as exc:
        # The division's next due cycle starts again from the same cursors.
        log_event(log, "workers.delta_sync.failed", logging.WARNING, division=run.division, error=exc.message)
        return 0


@shared_task(name=DELTA_SYNC_ALL, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def delta_sync_all() -> int:
    """Beat's entry: one `delta_sync_division` per due division, or (DELTA_SYNC_PER_LANE) one `delta_sync` per
    subscribed lane."""
    ctx = process_context()
    if ctx.settings.delta_sync_per_lane:

        def start(lane: Lane, full: bool) -> None:
            delta_sync.apply_async(args=[lane.connection_id, lane.division, lane.topic, full], queue=EVENTS_QUEUE)

        return fan_out(ctx, start)

    def start_run(run: DivisionRun) -> None:
        delta_sync_division.apply_async(args=run.args(), queue=EVENTS_QUEUE)

    return fan_out_divisions(ctx, start_run)


@shared_task(name=KEEP_ALIVE, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def keep_alive() -> int:
    return keep_alive_all(process_context())
