"""Issue 9: a worker process killed with SIGKILL mid-batch ten times in a row, while a stream of changes flows.

Single kills (a pool child, or the whole worker once) are in tests/workers/test_crash.py; here the kills repeat
every few seconds, so a restored message can land on a worker that is killed in turn, and a lane's lock can be held
by a dead task more than once.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true
from tests.pipeline.stream_support import ChangeStream, await_settled, delivery_states, out_of_order

pytestmark = pytest.mark.slow
# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory

PAIRS = [(d, t) for d in (101, 202) for t in ("Accounts", "Contacts")]
KILLS = 10


def _fired(pipeline: Pipeline) -> int:
    return int(pipeline.control("GET", "faults").json()["fired"])


@pytest.mark.timeout(600)
def test_a_worker_killed_ten_times_mid_batch_while_changes_flow(pipeline: Pipeline) -> None:
    """Broke: ten times in a row, while creates, updates and deletes flow in 2 divisions x 2 topics, the whole
    worker (main process and pool children, one process group) is killed with SIGKILL while a flush has a sync call
    open (a slow answer holds it) and pushes are in flight (the push target takes 0.1 s each), and a new worker (with
    beat) is started at once. The broker's redelivery of unacknowledged messages brings the work back; the delta
    sync and the delivery sweeper stand behind it.
    Checked: afterwards the SQL mirror and the push target equal the sandbox, and every key's pushes arrived in
    non-decreasing version order.
    """
    # Short, so the dead workers' unacknowledged messages come back within the test (countdowns stay under half of
    # it). A restored message that a kill catches between kombu's BRPOP and its unacked write is lost: the lane
    # lock's 30 s TTL, the delta sync and the delivery sweeper make that a delay (RELIABILITY.md).
    pipeline.settings = pipeline.settings.model_copy(
        update={
            "broker_visibility_timeout": 20,
            "delta_sync_minutes": 0.05,
            "delivery_sweep_after_seconds": 2.0,
        }
    )
    pipeline.service.register([101, 202], ["Accounts", "Contacts"])
    pipeline.push.delay_seconds = 0.1
    started = time.monotonic()
    worker = pipeline.start_worker(beat=True)
    with ChangeStream(pipeline, PAIRS) as stream:
        for kill in range(1, KILLS + 1):
            fired = _fired(pipeline)
            # The next Exact call answers after 2 s: the kill lands while a flush holds its lane's events and lock.
            pipeline.control("POST", "faults", json={"kind": "slow", "delay": 2, "count": 1})
            await_true(lambda: _fired(pipeline) > fired, timeout=90, what=f"kill {kill}: a flush calling Exact")  # noqa: B023
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            worker = pipeline.start_worker(beat=True)
        stream.await_sent(stream.sent + 20)
    pipeline.await_level(PAIRS, timeout=360)
    await_settled(pipeline, timeout=180)  # the sweeper runs every 60 s
    mirrored = sum(len(pipeline.mirror(d, t)) for d, t in PAIRS)
    print(
        f"\nkill-stream: kills={KILLS} {stream.counts()} mirror={mirrored} pushes_accepted="
        f"{len(pipeline.push.accepted)} push_requests={pipeline.push.requests} duplicates="
        f"{len(pipeline.push.duplicates)} deliveries={delivery_states(pipeline)} "
        f"exact_calls={pipeline.calls()} total={time.monotonic() - started:.0f}s"
    )
    assert pipeline.push.rejected == 0
    assert out_of_order(pipeline) == {}
    assert "dead" not in delivery_states(pipeline)
