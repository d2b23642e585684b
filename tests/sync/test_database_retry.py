"""A flush or delta sync that meets a locked database is retried: a flush keeps its events, and the change arrives
with no new webhook and no delta sync.

The worker waits half a second for a lock (SQLite's busy timeout from the URL's `?timeout=`, PostgreSQL's
`lock_timeout` from the URL's `options`), so its write fails while the test holds the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
from sqlalchemy.engine import make_url

from runtime.contracts import DELTA_SYNC, EVENTS_QUEUE
from sync.coalesce import Lane
from tests.pipeline import fresh_db
from tests.pipeline.db_locks import impatient, locked
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true
from workers.celery_app import make_celery

# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


LOCK_SECONDS = 0.5


def test_a_flush_that_meets_a_locked_database_is_retried(pipeline: Pipeline, redis_client: redis.Redis) -> None:
    pipeline.service.register([101], ["Contacts"])
    store_url = pipeline.settings.database_url
    pipeline.settings = pipeline.settings.model_copy(update={"database_url": impatient(store_url, LOCK_SECONDS)})
    pipeline.start_worker()  # no beat: no delta sync
    lane = Lane(pipeline.connection_id, 101, "Contacts")
    processing, lock = (lane.key(pipeline.settings.redis_prefix, part) for part in ("processing", "lock"))

    def gave_up() -> bool:
        # The flush took the event (it sits in `processing`) and let go of the lane without finishing.
        return bool(redis_client.exists(processing)) and not redis_client.exists(lock)

    with locked(store_url, "mirror_records"):
        made = pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": "while-locked"})
        assert made.status_code == 201
        await_true(gave_up, timeout=90, what="a flush meeting the locked database")
    key = made.json()["record"]["ID"].lower()
    pipeline.await_level([(101, "Contacts")], timeout=60)
    assert pipeline.mirror(101, "Contacts")[key]["LastName"] == "while-locked"
    assert pipeline.control("GET", "webhooks").json()["stats"]["sent"] == 1  # the one webhook, not a new one
    assert pipeline.push.duplicates == []
    assert not redis_client.exists(processing)


def test_a_delta_sync_that_meets_a_locked_database_is_retried(pipeline: Pipeline, redis_client: redis.Redis) -> None:
    pipeline.service.register([101], ["Contacts"])
    pipeline.control("POST", "webhooks/config", json={"delivery": False})
    store_url = pipeline.settings.database_url
    pipeline.settings = pipeline.settings.model_copy(update={"database_url": impatient(store_url, LOCK_SECONDS)})
    pipeline.start_worker()
    lock = Lane(pipeline.connection_id, 101, "Contacts").key(pipeline.settings.redis_prefix, "lock")
    held: list[bool] = []

    def gave_up() -> bool:
        # The walk took the lane and let go of it: it waits half a second for the database, so the poll sees it.
        if redis_client.exists(lock):
            held.append(True)
            return False
        return bool(held)

    celery = make_celery(pipeline.settings)
    try:
        with locked(store_url, "mirror_records"):
            pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": "while-locked"})
            celery.send_task(DELTA_SYNC, args=[pipeline.connection_id, 101, "Contacts"], queue=EVENTS_QUEUE)
            await_true(gave_up, timeout=90, what="a delta sync meeting the locked database")
        pipeline.await_level([(101, "Contacts")], timeout=60)
    finally:
        celery.close()


@contextmanager
def unreadable(url: str, tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A database URL for the worker that fails every query until `restore()` is called. SQLite readers are never
    blocked in WAL mode, so the path goes through a directory that does not exist yet; PostgreSQL's connections
    table is held under an `ACCESS EXCLUSIVE` lock, which blocks reads too (the lane lookup joins it; the receiver's
    tracked pairs, which read only subscriptions, stay readable)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        real = Path(str(parsed.database))
        gone = tmp_path / "not-yet"
        yield parsed.set(database=str(gone / real.name)).render_as_string(), lambda: gone.symlink_to(real.parent)
        return
    with ExitStack() as held:
        held.enter_context(locked(url, "connections"))
        yield impatient(url, LOCK_SECONDS), held.close


def test_an_event_that_cannot_read_the_database_is_retried_not_dropped(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.service.register([101], ["Contacts"])
    with unreadable(pipeline.settings.database_url, tmp_path) as (worker_url, restore):
        pipeline.settings = pipeline.settings.model_copy(update={"database_url": worker_url})
        pipeline.start_worker()  # no beat: no delta sync to pick the change up instead
        made = pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": "unreadable"})
        assert made.status_code == 201
        log = tmp_path / "worker0.log"
        await_true(
            lambda: "workers.lane.database_error" in log.read_text(errors="replace"),
            timeout=90,
            what="the event's task meeting the unreadable database",
        )
        restore()
    key = made.json()["record"]["ID"].lower()
    pipeline.await_level([(101, "Contacts")], timeout=60)
    assert pipeline.mirror(101, "Contacts")[key]["LastName"] == "unreadable"
    assert pipeline.control("GET", "webhooks").json()["stats"]["sent"] == 1
