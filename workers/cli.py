"""`exact-pipeline worker` and `exact-pipeline beat`: the Celery worker and scheduler, on the workers' app.

Usage:
    exact-pipeline worker [-c 4]                                 # a Celery worker on both queues
    exact-pipeline worker --queues exact-deliveries              # one queue only (the Procfile's `pusher`)
    exact-pipeline beat                                          # the schedule (delta sync, keep-alive, reconcile)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from runtime.contracts import QUEUES

__all__ = ["beat", "worker", "worker_argv"]


def _celery(*args: str) -> None:
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.celery_app", *args])


def worker_argv(concurrency: int, queues: Sequence[str], *extra: str) -> list[str]:
    """The Celery worker command (prefork, on `queues`) after `celery -A workers.celery_app`: what `worker` runs,
    and what tests and benchmarks start as a real process."""
    return ["worker", "--pool", "prefork", "-c", str(concurrency), "-Q", ",".join(queues), *extra]


def worker(
    concurrency: int = typer.Option(2, "-c", "--concurrency", help="Worker processes."),
    queues: str = typer.Option(",".join(QUEUES), "--queues", "-Q", help=f"Comma-separated, of: {', '.join(QUEUES)}."),
) -> None:
    """A Celery worker (prefork) on the events and deliveries queues, or on the ones --queues names.

    Run one per queue in production (the Procfile's `worker` and `pusher`): a slow push target then holds up only
    the pushes, never fetching or commands.
    """
    names = list(dict.fromkeys(q.strip() for q in queues.split(",") if q.strip()))
    unknown = [q for q in names if q not in QUEUES]
    if unknown or not names:
        raise typer.BadParameter(f"unknown queue {', '.join(unknown) or '(none)'}; the queues are {', '.join(QUEUES)}")
    # A node name per queue, so that two workers on one host (`worker` and `pusher`) do not share one.
    node = [] if len(names) == len(QUEUES) else ["-n", f"{'+'.join(names)}@%h"]
    _celery(*worker_argv(concurrency, names, *node, "--without-gossip", "--without-mingle"))


def beat(
    schedule: str = typer.Option("celerybeat-schedule", "--schedule", help="Where beat keeps its last-run times."),
) -> None:
    """Celery beat: the delta sync every DELTA_SYNC_MINUTES, the token keep-alive, the daily reconcile."""
    _celery("beat", "--schedule", schedule)
