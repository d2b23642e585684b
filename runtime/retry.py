"""The retry policy of every task: capped exponential backoff with jitter, under the broker's visibility timeout."""

from __future__ import annotations

import math
import random

__all__ = ["MAX_BACKOFF_SECONDS", "backoff", "retry_countdown", "under_visibility"]

MAX_BACKOFF_SECONDS = 300.0
# 2.0 ** 1024 overflows a float; Celery's retries are unbounded (max_retries=None).
_MAX_DOUBLINGS = 64


def backoff(retries: int, *, base: float = 1.0, cap: float = MAX_BACKOFF_SECONDS, wish: float | None = None) -> float:
    """`base` doubled per retry already made, capped at `cap`, with jitter (half to full), and never shorter than a
    `wish` the other side named (a rate limit's reset, a target's `Retry-After`), itself capped at `cap`.

    A wish that is not a finite, positive number of seconds is ignored. It gets no jitter of its own: it names a
    moment, and the shared rate limiter spaces out whoever comes back at it.
    """
    ceiling = min(cap, base * 2.0 ** min(max(retries, 0), _MAX_DOUBLINGS))
    wait = ceiling * (0.5 + random.random() / 2)
    if wish is not None and math.isfinite(wish) and wish > 0:
        wait = max(wait, min(wish, cap))
    return wait


def under_visibility(countdown: float, visibility_timeout: float) -> float:
    """A task's countdown, capped at half the broker's visibility timeout. A task waiting for its ETA sits
    unacknowledged in the worker; past the timeout Redis hands it out again while the first copy still waits, and
    each copy's retry doubles again: with a 10 s timeout, one busy lane's 30 s retries became thousands of copies."""
    return min(countdown, visibility_timeout / 2)


def retry_countdown(
    retries: int,
    visibility_timeout: float,
    *,
    base: float = 1.0,
    cap: float = MAX_BACKOFF_SECONDS,
    wish: float | None = None,
) -> float:
    """The countdown of a task's next retry: `backoff(...)` under half the visibility timeout.

    Usage:
        raise self.retry(countdown=retry_countdown(self.request.retries, settings.broker_visibility_timeout))
    """
    return under_visibility(backoff(retries, base=base, cap=cap, wish=wish), visibility_timeout)
