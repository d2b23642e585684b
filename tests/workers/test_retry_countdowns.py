"""A fetching task's retry countdown stays under half the broker's visibility timeout.

A task waiting for its countdown sits unacknowledged in the worker; once the visibility timeout passes, Redis hands
it out again while the first copy still waits, and each copy's retry is copied in turn. The SIGKILL stream test
(tests/workers/test_kill_stream.py) found it with a 10 s timeout: one busy lane's 30 s retries became 13,851 copies
of one task in four minutes, and the lane never caught up.
"""

from __future__ import annotations

from runtime.settings import Settings
from sync import tasks
from sync.context import WorkerContext


def test_countdowns_are_capped_by_a_short_visibility_timeout(settings: Settings) -> None:
    ctx = WorkerContext.from_settings(settings.model_copy(update={"broker_visibility_timeout": 10}))
    assert tasks._busy_wait(ctx, 8) == 30.0  # the lane-busy wait alone would outlast the timeout
    assert tasks._under_visibility(ctx, tasks._busy_wait(ctx, 8)) == 5.0
    assert tasks._under_visibility(ctx, tasks._backoff(8)) == 5.0
    assert tasks._under_visibility(ctx, 2.0) == 2.0


def test_the_production_timeout_leaves_countdowns_alone(settings: Settings) -> None:
    ctx = WorkerContext.from_settings(settings)  # broker_visibility_timeout=3600
    assert tasks._under_visibility(ctx, tasks._busy_wait(ctx, 8)) == 30.0
    assert tasks._under_visibility(ctx, tasks.MAX_BACKOFF_SECONDS) == tasks.MAX_BACKOFF_SECONDS
