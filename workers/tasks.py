"""Celery tasks: coalesce webhook events per lane, fetch them in batches, push from the delivery log, delta sync.

Every task is idempotent: the mirror upserts by version, the delivery log is unique per (sink, change), and a
flush re-reads from its cursor, so a task run twice (acks_late after a crash) changes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Task
from sqlalchemy import select

from exact import ExactError, NeedsConsent, RateLimited
from exact._models import Connection
from runtime.logging import log_event
from subscriptions.models import Subscription
from workers import runtime
from workers.celery_app import app
from workers.delivery import Lane, deliver_lane, pending_lanes
from workers.names import DELIVERIES_QUEUE, EVENTS_QUEUE, HANDLE_EVENT
from workers.sinks.base import PushSink
from workers.sync import LaneSync

__all__ = ["deliver", "delta_sync", "delta_sync_all", "flush", "handle_event", "keep_alive", "sweep"]

log = logging.getLogger(__name__)

# Take the pending set into a processing set atomically; a crashed flush leaves it there for its retry.
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[3])
return redis.call('SMEMBERS', KEYS[2])
"""


def _keys(connection_id: int, division: int, topic: str) -> tuple[str, str, str, str]:
    base = f"{runtime.settings().redis_prefix}lane:{connection_id}:{division}:{topic.lower()}"
    return f"{base}:pending", f"{base}:processing", f"{base}:scheduled", f"{base}:lock"


def dispatch(lanes: Sequence[Lane]) -> None:
    for lane in lanes:
        deliver.apply_async(args=[lane.sink, lane.division, lane.topic, lane.key], queue=DELIVERIES_QUEUE)


@app.task(name=HANDLE_EVENT, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def handle_event(event: dict[str, Any]) -> None:
    """Record the event in its lane's pending set and make sure one flush is scheduled for the window."""
    division, topic = int(event["division"]), str(event["topic"])
    connection_id = runtime.connection_for(division, topic)
    if connection_id is None:
        log_event(log, "workers.event.untracked", division=division, topic=topic)
        return
    pending, _processing, scheduled, _lock = _keys(connection_id, division, topic)
    client = runtime.redis_client()
    client.sadd(pending, f"{event['action']}|{str(event['key']).lower()}")
    window = runtime.settings().coalesce_window_seconds
    if client.set(scheduled, "1", nx=True, ex=max(int(window * 10), 30)):
        flush.apply_async(args=[connection_id, division, topic], countdown=window, queue=EVENTS_QUEUE)


@app.task(name="workers.flush", bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def flush(self: Task, connection_id: int, division: int, topic: str) -> int:
    """Fetch everything the lane's events point at, in as few calls as the topic allows."""
    pending, processing, scheduled, lock_key = _keys(connection_id, division, topic)
    client = runtime.redis_client()
    lock = client.lock(lock_key, timeout=600, blocking_timeout=1)
    if not lock.acquire():
        raise self.retry(countdown=runtime.settings().coalesce_window_seconds)
    try:
        taken = [m.decode() for m in client.register_script(_TAKE)(keys=[pending, processing, scheduled])]
        if not taken:
            return 0
        keys = {m.split("|", 1)[1] for m in taken if not m.startswith("Delete|")}
        has_deletes = any(m.startswith("Delete|") for m in taken)
        accepted = _lane(connection_id, division, topic).run(keys=keys, deletes=has_deletes or not keys)
        client.delete(processing)
        return accepted
    except RateLimited as exc:
        raise self.retry(countdown=min(max(exc.retry_at - __import__("time").time(), 1), 300)) from exc
    except NeedsConsent:
        log_event(log, "workers.flush.needs_consent", logging.ERROR, connection=connection_id)
        return 0
    finally:
        lock.release()


def _lane(connection_id: int, division: int, topic: str) -> LaneSync:
    return LaneSync(runtime.sessions(), runtime.client(connection_id), runtime.sinks(), dispatch,
                    connection_id, division, topic)  # fmt: skip


@app.task(name="workers.deliver", bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def deliver(self: Task, sink_name: str, division: int, topic: str, key: str) -> int:
    """Push one lane's pending changes in version order; on a passing failure, retry with backoff."""
    sink = next((s for s in runtime.sinks() if s.name == sink_name and isinstance(s, PushSink)), None)
    if sink is None:
        return 0
    lane = Lane(sink_name, division, topic, key)
    lock = runtime.redis_client().lock(f"{runtime.settings().redis_prefix}deliver:{sink_name}:{division}:{key}",
                                       timeout=300, blocking_timeout=2)  # fmt: skip
    if not lock.acquire():
        raise self.retry(countdown=1)
    try:
        with runtime.sessions()() as session:
            result = deliver_lane(session, sink, lane, runtime.settings())
    finally:
        lock.release()
    if result.retry:
        raise self.retry(countdown=min(2 ** min(self.request.retries, 8), 300))
    return result.delivered


@app.task(name="workers.delta_sync", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def delta_sync(connection_id: int, division: int, topic: str, full: bool = False) -> int:
    """The safety net: everything since the cursor, whether or not a webhook said so."""
    try:
        return _lane(connection_id, division, topic).run(full=full)
    except ExactError as exc:
        log_event(log, "workers.delta_sync.failed", logging.WARNING, division=division, topic=topic, error=exc.message)
        return 0


@app.task(name="workers.delta_sync_all", ignore_result=True)  # type: ignore[untyped-decorator]
def delta_sync_all() -> int:
    """Fan out one delta sync per subscribed lane; a DivisionMoveDate change makes it a full resync."""
    with runtime.sessions()() as session:
        lanes = session.execute(
            select(Subscription.connection_id, Subscription.division, Subscription.topic)
            .join(Connection, Connection.id == Subscription.connection_id)
            .where(Subscription.state != "removed", Connection.needs_consent.is_(False))
        ).all()
    for connection_id, division, topic in lanes:
        delta_sync.apply_async(args=[connection_id, division, topic], queue=EVENTS_QUEUE)
    return len(lanes)


@app.task(name="workers.deliveries.sweep", ignore_result=True)  # type: ignore[untyped-decorator]
def sweep(older_than_seconds: float = 60.0) -> int:
    """Re-dispatch lanes whose pending deliveries lost their message (a Redis restart): a delay, not a loss."""
    with runtime.sessions()() as session:
        lanes = pending_lanes(session, older_than_seconds=older_than_seconds)
    dispatch(lanes)
    return len(lanes)


@app.task(name="workers.keep_alive", ignore_result=True)  # type: ignore[untyped-decorator]
def keep_alive() -> int:
    """Refresh connections idle for 25 days, before Exact's 30 days kill their refresh tokens."""
    from exact.factory import token_manager_from_settings

    with runtime.sessions()() as session:
        ids = list(session.scalars(select(Connection.id).where(Connection.needs_consent.is_(False))))
    refreshed = 0
    for connection_id in ids:
        try:
            refreshed += token_manager_from_settings(runtime.settings(), runtime.sessions(), connection_id).keep_alive()
        except ExactError as exc:
            log_event(log, "workers.keep_alive.failed", logging.ERROR, connection=connection_id, error=exc.message)
    return refreshed
