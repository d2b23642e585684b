"""The beat schedule: the delta sync every DELTA_SYNC_MINUTES, keep-alive and reconcile, all tasks the worker knows."""

from __future__ import annotations

from runtime.settings import Settings
from workers.celery_app import make_celery
from workers.names import DELTA_SYNC, DELTA_SYNC_ALL, EVENTS_QUEUE, FLUSH, HANDLE_EVENT, KEEP_ALIVE
from workers.schedule import RECONCILE, beat_schedule


def test_every_scheduled_task_is_one_the_worker_runs(settings: Settings) -> None:
    settings = settings.model_copy(update={"delta_sync_minutes": 7.5})
    app = make_celery(settings, include=("workers.tasks", "subscriptions.tasks"))
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    assert schedule["workers.delta-sync"]["schedule"] == 450.0
    assert {entry["task"] for entry in beat_schedule(settings).values()} == {DELTA_SYNC_ALL, KEEP_ALIVE, RECONCILE}
    for entry in beat_schedule(settings).values():
        assert entry["task"] in app.tasks, entry["task"]
        assert entry["options"]["queue"] == EVENTS_QUEUE
        # A run nobody picked up before the next one is dropped, not piled up behind a stopped worker.
        assert entry["options"]["expires"] == entry["schedule"]
    for name in (HANDLE_EVENT, FLUSH, DELTA_SYNC):
        assert name in app.tasks, name
