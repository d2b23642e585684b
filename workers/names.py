"""Task and queue names shared by the receiver (which publishes) and the workers (which consume)."""

from __future__ import annotations

__all__ = ["DELIVERIES_QUEUE", "EVENTS_QUEUE", "HANDLE_EVENT"]

# The receiver publishes one message per accepted webhook to this task, with one positional argument:
# a dict of plain values {"event_id", "division", "topic", "key", "action", "event_created_on",
# "client_id", "received_at"}. `event_id` is stable for the same (division, topic, key, action, event time).
HANDLE_EVENT = "workers.handle_event"
EVENTS_QUEUE = "exact-events"
# Pushes to sinks get their own queue so that a slow or down target never holds up fetching.
DELIVERIES_QUEUE = "exact-deliveries"
