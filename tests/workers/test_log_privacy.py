"""Record contents never reach a log, even when the database refuses a flush and a real worker logs the error."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

from tests.pipeline import fresh_db
from tests.pipeline.db_locks import impatient, locked
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory

# What a log says when a write met the lock, however the worker reports it (task failure, retry, own event).
LOCK_ERRORS = ("OperationalError", "database is locked", "lock timeout", "LockNotAvailable")
# A flush writes its cursor row before it fetches, and the records after: the sandbox holds the fetch this long, so
# that the lock, taken once the fetch is seen, meets the records' write and not the cursor's (plenty for a 0.1 s poll).
FETCH_HELD_SECONDS = 5.0


def _worker_logs(pipeline: Pipeline) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(pipeline.log_dir.glob("worker*.log")))


def _met_the_lock(pipeline: Pipeline) -> bool:
    logs = _worker_logs(pipeline)
    return any(sign in logs for sign in LOCK_ERRORS)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def test_a_flush_the_database_refuses_logs_no_name_or_email(pipeline: Pipeline) -> None:
    pipeline.service.register([101], ["Contacts"])
    pipeline.settings = pipeline.settings.model_copy(
        update={"database_url": impatient(pipeline.settings.database_url, 1.0), "sinks": "sql"}
    )
    worker = pipeline.start_worker()
    # A first flush walks the seeded records, so that the locked one's first write is a record carrying the marker.
    pipeline.control("POST", "records/101/crm/Contacts", json={"LastName": "Warm-up"})
    pipeline.await_level([(101, "Contacts")], push=False)
    pipeline.control("POST", "faults", json={"kind": "slow", "division": 101, "delay": FETCH_HELD_SECONDS})
    marker = f"private-{uuid.uuid4().hex}"
    for n in range(3):
        record = {"LastName": f"{marker}-{n}", "Email": f"{marker}{n}@example.nl"}
        pipeline.control("POST", "records/101/crm/Contacts", json=record)

    def tail() -> str:
        return _worker_logs(pipeline)[-3000:]

    await_true(lambda: pipeline.control("GET", "faults").json()["fired"] > 0, timeout=120, what="a fetch", detail=tail)
    with locked(pipeline.settings.database_url, "mirror_records"):
        # Before the fix SQLite still waits out its 30 s busy timeout here; a retry of the flush may follow the error.
        await_true(lambda: _met_the_lock(pipeline), timeout=120, what="the flush meeting the lock", detail=tail)
    _stop(worker)
    logs = _worker_logs(pipeline)
    assert '"event": "' in logs, "the worker logged nothing as JSON: the grep would prove nothing"
    leaked = [line[:300] for line in logs.splitlines() if marker in line]
    assert not leaked, f"the worker logged record contents: {leaked}"
    # PostgreSQL's driver cuts a JSON parameter to its first 35 characters, so the names there hide by luck: what
    # must not reach a log is the parameters themselves (SQLAlchemy's "[parameters: ...]" part of the error).
    quoted = [line[:300] for line in logs.splitlines() if "[parameters:" in line]
    assert not quoted, f"the worker logged statement parameters: {quoted}"
