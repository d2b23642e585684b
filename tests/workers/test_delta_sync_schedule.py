"""The beat schedule: the delta sync every DELTA_SYNC_MINUTES, keep-alive, reconcile, sweepers and pruning, all tasks
the worker knows, each on its queue."""

from __future__ import annotations

from runtime.contracts import (
    CHECK_SYSTEM,
    DELIVERIES_QUEUE,
    DELIVERY_TASKS,
    DELTA_SYNC,
    DELTA_SYNC_ALL,
    DELTA_SYNC_DIVISION,
    EVENTS_QUEUE,
    FLUSH,
    HANDLE_EVENT,
    KEEP_ALIVE,
    PRUNE_DELIVERIES,
    RECONCILE,
    SWEEP_COMMANDS,
    SWEEP_DELIVERIES,
)
from runtime.settings import Settings
from workers.celery_app import TASK_MODULES, make_celery


def test_every_scheduled_task_is_one_the_worker_runs(settings: Settings) -> None:
    settings = settings.model_copy(update={"delta_sync_minutes": 7.5})
    app = make_celery(settings, include=TASK_MODULES)
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert schedule["workers.delta-sync"]["schedule"] == 450.0
    tasks = {entry["task"] for entry in schedule.values()}
    expected = {DELTA_SYNC_ALL, KEEP_ALIVE, RECONCILE, SWEEP_DELIVERIES, PRUNE_DELIVERIES, SWEEP_COMMANDS, CHECK_SYSTEM}
    assert tasks == expected
    for entry in schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
        queue = entry.get("options", {}).get("queue", EVENTS_QUEUE)
        assert queue == (DELIVERIES_QUEUE if entry["task"] in DELIVERY_TASKS else EVENTS_QUEUE), entry
        if entry["task"] in {DELTA_SYNC_ALL, KEEP_ALIVE, RECONCILE, PRUNE_DELIVERIES, CHECK_SYSTEM}:
            # A run nobody picked up before the next one is dropped, not piled up behind a stopped worker.
            assert entry["options"]["expires"] == entry["schedule"]
    for name in (HANDLE_EVENT, FLUSH, DELTA_SYNC, DELTA_SYNC_DIVISION, *DELIVERY_TASKS):
        assert name in app.tasks, name
