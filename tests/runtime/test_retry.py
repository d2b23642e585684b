"""A task's retry countdown stays under half the broker's visibility timeout (`runtime.retry`).

A task waiting for its countdown sits unacknowledged in the worker; once the visibility timeout passes, Redis hands
it out again while the first copy still waits, and each copy's retry is copied in turn. The SIGKILL stream test
(tests/workers/test_kill_stream.py) found it with a 10 s timeout: one busy lane's 30 s retries became 13,851 copies
of one task in four minutes, and the lane never caught up.
"""

from __future__ import annotations

import time

import pytest

from exact import RateLimited
from runtime.retry import MAX_BACKOFF_SECONDS, backoff, retry_countdown
from runtime.settings import Settings
from sync import tasks
from sync.context import WorkerContext


def test_countdowns_are_capped_by_a_short_visibility_timeout(settings: Settings) -> None:
    ctx = WorkerContext.from_settings(settings.model_copy(update={"broker_visibility_timeout": 10}))
    busy = tasks.LaneBusy("held")
    assert all(tasks._countdown(ctx, 8, busy) == 5.0 for _ in range(20))  # the lane-busy wait is 15-30 s
    assert tasks._countdown(ctx, 8, RuntimeError()) == 5.0
    assert retry_countdown(0, 10, base=2.0) <= 2.0


def test_the_production_timeout_leaves_countdowns_alone(settings: Settings) -> None:
    ctx = WorkerContext.from_settings(settings)  # broker_visibility_timeout=3600
    waits = [tasks._countdown(ctx, 8, tasks.LaneBusy("held")) for _ in range(50)]
    assert all(tasks.BUSY_CAP_SECONDS / 2 <= w <= tasks.BUSY_CAP_SECONDS for w in waits)
    assert retry_countdown(20, 3600, wish=10**6) == MAX_BACKOFF_SECONDS


def test_a_rate_limit_waits_for_its_reset(settings: Settings) -> None:
    ctx = WorkerContext.from_settings(settings)
    closed = RateLimited("closed", retry_at=time.time() + 40)
    assert 39 <= tasks._countdown(ctx, 0, closed) <= 40


@pytest.mark.parametrize(
    ("retries", "ceiling"), [pytest.param(0, 1.0, id="first"), pytest.param(3, 8.0, id="third"), (2000, 300.0)]
)
def test_backoff_doubles_is_capped_and_jittered(retries: int, ceiling: float) -> None:
    waits = [backoff(retries) for _ in range(50)]
    assert all(ceiling / 2 <= w <= ceiling for w in waits), (min(waits), max(waits))


@pytest.mark.parametrize("wish", [float("inf"), float("nan"), -5.0, 0.0])
def test_a_wish_that_is_no_number_of_seconds_is_ignored(wish: float) -> None:
    assert backoff(0, wish=wish) <= 1.0
