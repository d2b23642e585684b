"""Celery tasks that push: one per delivery lane, the sweeper that re-dispatches lanes a lost message left behind,
and the pruning of old delivery rows (and of the writes commands recorded, on the same retention).

The tasks stay thin; the work is `delivery.push.deliver_lanes` and `delivery.outbox.sweep_lanes`, which tests call
directly.
Both are idempotent: the lane's Redis lock and the rows' state machine keep two runs from sending one row twice, and
a row a killed worker left `sending` goes out again under the same `webhook-id`, which the target dedupes.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import Task, shared_task

from delivery.history import prune_history
from delivery.origin import prune_writes
from delivery.outbox import PushLane, dispatch_lanes, sweep_lanes
from delivery.push import BUSY_RETRY_SECONDS, DeliveryContext, deliver_lanes, retry_groups
from delivery.retention import prune_deliveries
from runtime.contracts import DELIVER, PRUNE_DELIVERIES, SWEEP_DELIVERIES
from runtime.logging import log_event
from runtime.process import resources
from runtime.retry import retry_countdown, under_visibility

__all__ = ["deliver", "delivery_context", "prune", "sweep"]

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def delivery_context() -> DeliveryContext:
    """The worker process's delivery context, over the process's shared resources."""
    shared = resources()
    return DeliveryContext.build(shared.settings, shared.sessions, shared.redis)


@shared_task(name=DELIVER, bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def deliver(self: Task, sink: str, division: int, topic: str, key: str, more: list[str] | None = None) -> int:
    """Push the pending changes of one lane, or of a batch (`key` and `more`), in version order per key; returns how
    many were delivered."""
    ctx = delivery_context()
    lanes = [PushLane(sink, division, topic, k) for k in [key, *(more or [])]]
    outcome = deliver_lanes(ctx, lanes, owner=str(self.request.id))
    visibility = ctx.settings.broker_visibility_timeout
    # Each retried batch is a message of its own under this task's id (`throw=False`); this one is then acked.
    if outcome.busy:
        # The holder may have looked before our row was committed: look again shortly (2-4 s), however often.
        _retry(
            self, sink, division, topic, list(outcome.busy), retry_countdown(0, visibility, base=2 * BUSY_RETRY_SECONDS)
        )
    for wait, keys in retry_groups(outcome.retry):
        # The rows' own backoff (`delivery.push.backoff_seconds`); a task woken earlier finds a head not yet due and
        # leaves it to the sweeper.
        _retry(self, sink, division, topic, keys, under_visibility(wait, visibility))
    return outcome.delivered


def _retry(self: Task, sink: str, division: int, topic: str, keys: list[str], countdown: float) -> None:
    first, *more = keys
    self.retry(
        args=[sink, division, topic, first], kwargs={"more": more} if more else {}, countdown=countdown, throw=False
    )


@shared_task(name=SWEEP_DELIVERIES, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep() -> int:
    """Beat's entry: dispatch every lane with a delivery overdue for longer than the sweep delay."""
    ctx = delivery_context()
    stopped = [name for name in ctx.push_sinks if ctx.redis.exists(ctx.breaker(name).gone_key)]
    with ctx.sessions() as session:
        lanes = sweep_lanes(ctx.settings, session, skip=stopped)
    sent = dispatch_lanes(ctx.settings, lanes)
    if lanes:
        log_event(log, "workers.deliveries.swept", lanes=len(lanes), sent=sent)
    return sent


@shared_task(name=PRUNE_DELIVERIES, acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def prune() -> int:
    """Beat's entry: delete delivered and superseded rows past DELIVERY_RETENTION_DAYS (see delivery.retention), and
    the command writes recorded as long ago (see delivery.origin)."""
    ctx = delivery_context()
    removed = prune_deliveries(ctx.sessions, ctx.settings.delivery_retention_days)
    if removed:
        log_event(log, "workers.deliveries.pruned", rows=removed)
    writes = prune_writes(ctx.sessions, ctx.settings.delivery_retention_days)
    if writes:
        log_event(log, "workers.command_writes.pruned", rows=writes)
    if traced := prune_history(ctx.sessions, ctx.settings.trace_history, ctx.settings.trace_retention_days):
        log_event(log, "workers.trace_events.pruned", rows=traced)
    return removed
