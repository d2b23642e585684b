"""A Celery worker (or its pool child) killed with SIGKILL mid-flush: afterwards nothing is missing or reordered.

The flush is caught in flight by a slow sandbox answer: the kill lands while its sync call is open, after the
flush took the lane's events and its lock. acks_late + reject_on_worker_lost bring the message back (at once when
only the pool child dies, after the visibility timeout when the whole worker dies), its task id takes the lock
back, and the walk restarts from the cursor, which had not moved.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline

pytestmark = pytest.mark.slow
# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _await_fault_fired(pipeline: Pipeline, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while pipeline.control("GET", "faults").json()["fired"] == 0:
        assert time.monotonic() < deadline, "the flush never reached the slow call"
        time.sleep(0.05)


def _start_burst(pipeline: Pipeline) -> None:
    pipeline.control("POST", "records/101/crm/Contacts", json={"FirstName": "first"})
    pipeline.await_level([(101, "Contacts")])
    # The next sync call answers after 4 s: the flush will be in flight when the kill comes.
    pipeline.control("POST", "faults", json={"kind": "slow", "endpoint": "sync/CRM/Contacts", "delay": 4, "count": 1})
    assert pipeline.control("POST", "records/101/crm/Contacts/bulk", json={"count": 300}).status_code == 201
    for n in range(5):
        key = pipeline.control("GET", "records/101/crm/Contacts").json()["records"][n]["ID"]
        pipeline.control("PUT", f"records/101/crm/Contacts/{key}", json={"LastName": f"changed {n}"})
    _await_fault_fired(pipeline)


def _assert_level_and_in_order(pipeline: Pipeline) -> None:
    pipeline.await_level([(101, "Contacts")], timeout=90)
    assert pipeline.push.rejected == 0
    for lane, received in pipeline.push.lanes().items():
        versions = [a.version for a in received]
        assert versions == sorted(versions), f"out of order for {lane}: {versions}"


def test_a_killed_pool_child_is_replaced_and_its_flush_rerun(pipeline: Pipeline) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"broker_visibility_timeout": 30})
    pipeline.service.register([101], ["Contacts"])
    worker = pipeline.start_worker()
    _start_burst(pipeline)
    children = _children(worker.pid)
    assert children, "a prefork worker has pool children"
    for child in children:
        os.kill(child, signal.SIGKILL)
    _assert_level_and_in_order(pipeline)
    assert worker.poll() is None, "the main worker process survives its children"


def test_a_whole_worker_killed_mid_flush_loses_nothing(pipeline: Pipeline) -> None:
    # Short, so the dead worker's unacknowledged flush comes back within the test; still longer than any task here.
    pipeline.settings = pipeline.settings.model_copy(update={"broker_visibility_timeout": 10})
    pipeline.service.register([101], ["Contacts"])
    worker = pipeline.start_worker()
    _start_burst(pipeline)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    pipeline.start_worker()
    _assert_level_and_in_order(pipeline)
