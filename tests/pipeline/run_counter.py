"""Counts, inside a test's Celery worker, the runs of the tasks that call Exact (flush, delta sync), in Redis under
the run's key prefix: a fault test bounds the Exact calls of a fault window by these runs and the retry policy.

Loaded into the worker by Celery's `--include`, given through the environment the worker inherits:

    monkeypatch.setenv("CELERY_WORKER_INCLUDE", run_counter.INCLUDE)
    pipeline.start_worker()
    runs(redis_client, pipeline.settings.redis_prefix)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis
from celery import signals

from runtime.contracts import DELTA_SYNC, DELTA_SYNC_ALL, DELTA_SYNC_DIVISION, FLUSH
from runtime.redis import sync_client
from runtime.settings import get_settings

__all__ = ["EXACT_TASKS", "INCLUDE", "runs"]

INCLUDE = "tests.pipeline.run_counter"
EXACT_TASKS = (FLUSH, DELTA_SYNC, DELTA_SYNC_ALL, DELTA_SYNC_DIVISION)


def _key(prefix: str) -> str:
    return f"{prefix}test:exact-task-runs"


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return sync_client(get_settings().redis_url)  # in the pool child, after the fork


@signals.task_prerun.connect  # type: ignore[untyped-decorator]
def _count(sender: Any = None, **_: Any) -> None:
    if getattr(sender, "name", None) in EXACT_TASKS:
        _client().incr(_key(get_settings().redis_prefix))


def runs(client: redis.Redis, prefix: str) -> int:
    """Runs so far of the tasks that call Exact (every retry of a task is a run)."""
    return int(client.get(_key(prefix)) or 0)
