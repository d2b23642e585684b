"""The whole Celery beat schedule: delta sync, token keep-alive, subscription reconcile, sweepers, pruning, and the
schema recording when `SCHEMA_RECORD_HOURS` is set."""

from __future__ import annotations

from typing import Any

from runtime.contracts import (
    CHECK_SYSTEM,
    DELIVERIES_QUEUE,
    DELTA_SYNC_ALL,
    EVENTS_QUEUE,
    KEEP_ALIVE,
    PRUNE_DELIVERIES,
    RECONCILE,
    RECORD_SCHEMAS,
    SWEEP_COMMANDS,
    SWEEP_DELIVERIES,
)
from runtime.settings import Settings

__all__ = ["beat_schedule"]

KEEP_ALIVE_SECONDS = 6 * 3600.0
RECONCILE_SECONDS = 24 * 3600.0
SWEEP_SECONDS = 60.0
PRUNE_SECONDS = 3600.0


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Entries for `celery_app.conf.beat_schedule`; each run expires at the next, so a stopped worker does not
    find a pile of them when it comes back."""
    interval = settings.delta_sync_minutes * 60
    return {
        "workers.delta-sync": {
            "task": DELTA_SYNC_ALL,
            "schedule": interval,
            "options": {"queue": EVENTS_QUEUE, "expires": interval},
        },
        "exact.keep-alive": {
            "task": KEEP_ALIVE,
            "schedule": KEEP_ALIVE_SECONDS,
            "options": {"queue": EVENTS_QUEUE, "expires": KEEP_ALIVE_SECONDS},
        },
        "subscriptions.reconcile": {
            "task": RECONCILE,
            "schedule": RECONCILE_SECONDS,
            "options": {"queue": EVENTS_QUEUE, "expires": RECONCILE_SECONDS},
        },
        # Delivery bookkeeping runs on the deliveries queue: the events worker never waits behind it.
        "deliveries-sweep": {
            "task": SWEEP_DELIVERIES,
            "schedule": SWEEP_SECONDS,
            "options": {"queue": DELIVERIES_QUEUE},
        },
        "deliveries-prune": {
            "task": PRUNE_DELIVERIES,
            "schedule": PRUNE_SECONDS,
            "options": {"queue": DELIVERIES_QUEUE, "expires": PRUNE_SECONDS},
        },
        "commands-sweep": {"task": SWEEP_COMMANDS, "schedule": SWEEP_SECONDS},
        # Operational episodes as System events (sync/checks.py); cheap queries, each episode pushed once.
        "system-check": {"task": CHECK_SYSTEM, "schedule": SWEEP_SECONDS, "options": {"expires": SWEEP_SECONDS}},
    } | _schema_record(settings)


def _schema_record(settings: Settings) -> dict[str, dict[str, Any]]:
    """Off unless `SCHEMA_RECORD_HOURS` > 0: each recording spends one call per resource of a division's budget."""
    if settings.schema_record_hours <= 0:
        return {}
    interval = settings.schema_record_hours * 3600
    return {
        RECORD_SCHEMAS: {
            "task": RECORD_SCHEMAS,
            "schedule": interval,
            "options": {"queue": EVENTS_QUEUE, "expires": interval},
        }
    }
