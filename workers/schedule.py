"""The Celery beat schedule of the fetching side: the delta sync, the token keep-alive, the subscription reconcile."""

from __future__ import annotations

from typing import Any

from runtime.settings import Settings
from workers.names import DELTA_SYNC_ALL, EVENTS_QUEUE, KEEP_ALIVE

__all__ = ["RECONCILE", "beat_schedule"]

RECONCILE = "subscriptions.reconcile"  # subscriptions/tasks.py
KEEP_ALIVE_SECONDS = 6 * 3600.0
RECONCILE_SECONDS = 24 * 3600.0


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
    }
