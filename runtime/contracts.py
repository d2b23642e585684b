"""What the packages agree on without importing each other: queue and task names, the webhook event, Redis keys."""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "RECORD_SCHEMAS",
    "CHECK_SYSTEM",
    "DELIVER",
    "DELIVERIES_QUEUE",
    "DELIVERY_TASKS",
    "DELTA_SYNC",
    "DELTA_SYNC_ALL",
    "DELTA_SYNC_DIVISION",
    "EVENTS_QUEUE",
    "FLUSH",
    "HANDLE_EVENT",
    "KEEP_ALIVE",
    "LAST_WEBHOOK_KEY",
    "PRUNE_DELIVERIES",
    "QUEUES",
    "RECONCILE",
    "RUN_COMMAND",
    "SWEEP_COMMANDS",
    "SWEEP_DELIVERIES",
    "WebhookEvent",
]

EVENTS_QUEUE = "exact-events"
# Pushes to sinks get their own queue (and, in the Procfile, their own worker) so that a slow or down target never
# holds up fetching or commands.
DELIVERIES_QUEUE = "exact-deliveries"
QUEUES = (EVENTS_QUEUE, DELIVERIES_QUEUE)

# Task names are public: messages already queued name them, so they keep their historical `workers.` spelling.
# The receiver publishes one HANDLE_EVENT per accepted webhook, with one `WebhookEvent` as its only argument.
HANDLE_EVENT = "workers.handle_event"
# Fetching (sync/tasks.py): one flush per lane and coalescing window, the delta sync per lane (a backfill, the old
# cycle) and per due division (the safety net's cycle), their fan-out, the token keep-alive.
FLUSH = "workers.flush"
DELTA_SYNC = "workers.delta_sync"
DELTA_SYNC_ALL = "workers.delta_sync_all"
DELTA_SYNC_DIVISION = "workers.delta_sync_division"
KEEP_ALIVE = "workers.keep_alive"
# Pushing (delivery/tasks.py): one task per push lane (sink, division, topic, key), the sweeper, the pruning.
DELIVER = "workers.deliver"
SWEEP_DELIVERIES = "workers.deliveries.sweep"
PRUNE_DELIVERIES = "workers.deliveries.prune"
DELIVERY_TASKS = (DELIVER, SWEEP_DELIVERIES, PRUNE_DELIVERIES)
# Commands (commands/tasks.py): one task per kept command, on the events queue; the sweeper of lost and stuck ones.
RUN_COMMAND = "workers.run_command"
SWEEP_COMMANDS = "workers.commands.sweep"
# Subscriptions (subscriptions/tasks.py): the daily reconcile against Exact.
RECONCILE = "subscriptions.reconcile"
# Schema (schema/tasks.py): beat's recording of production's shapes, when SCHEMA_RECORD_HOURS is set.
RECORD_SCHEMAS = "schema.record"
# Operational checks (sync/checks.py): consent, silence, dead letters, stuck lanes, pushed as System events.
CHECK_SYSTEM = "workers.system.check"

# Under the settings' Redis prefix: a hash of (division, topic) → when the receiver last accepted a webhook for it,
# written by the receiver's handoff and read to find silent subscriptions.
LAST_WEBHOOK_KEY = "last-webhook"


class WebhookEvent(TypedDict):
    """One accepted webhook as the receiver hands it on. `event_id` is the webhook's dedupe key
    (`receiver.handoff.webhook_key`), stable for the same (division, topic, key, action, event time), so Exact's
    retries of one event are one event; the delivery's event id is another thing (`delivery.changes.event_id_of`)."""

    event_id: str
    division: int
    topic: str
    key: str
    action: str
    event_created_on: str | None
    client_id: str | None
    received_at: float
