"""Task and queue names shared by the receiver (which publishes) and the workers (which consume)."""

from __future__ import annotations

__all__ = [
    "DELIVER",
    "DELIVERIES_QUEUE",
    "DELTA_SYNC",
    "DELTA_SYNC_ALL",
    "EVENTS_QUEUE",
    "FLUSH",
    "HANDLE_EVENT",
    "KEEP_ALIVE",
    "PRUNE_DELIVERIES",
    "QUEUES",
    "RUN_COMMAND",
    "SWEEP_COMMANDS",
    "SWEEP_DELIVERIES",
]

# The receiver publishes one message per accepted webhook to this task, with one positional argument:
# a dict of plain values {"event_id", "division", "topic", "key", "action", "event_created_on",
# "client_id", "received_at"}. `event_id` is stable for the same (division, topic, key, action, event time).
HANDLE_EVENT = "workers.handle_event"
EVENTS_QUEUE = "exact-events"
# Pushes to sinks get their own queue so that a slow or down target never holds up fetching.
DELIVERIES_QUEUE = "exact-deliveries"
# Every queue, for `exact-pipeline worker --queues`; the Procfile and compose run one worker process per queue.
QUEUES = (EVENTS_QUEUE, DELIVERIES_QUEUE)
# Pushing (workers/deliveries.py): one task per push lane (sink, division, topic, key); the periodic sweeper and
# the pruning of old delivery rows, both on the deliveries queue.
DELIVER = "workers.deliver"
SWEEP_DELIVERIES = "workers.deliveries.sweep"
PRUNE_DELIVERIES = "workers.deliveries.prune"
# Fetching (workers/tasks.py): one flush per lane and coalescing window, the delta sync per lane and its fan-out,
# the token keep-alive.
FLUSH = "workers.flush"
DELTA_SYNC = "workers.delta_sync"
DELTA_SYNC_ALL = "workers.delta_sync_all"
KEEP_ALIVE = "workers.keep_alive"
# Commands (workers/commands.py): one task per kept command, on the events queue; the sweeper of lost ones.
RUN_COMMAND = "workers.run_command"
SWEEP_COMMANDS = "workers.commands.sweep"
