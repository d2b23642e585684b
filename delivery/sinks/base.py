"""The sink plugin protocol, and the errors of the sinks package.

SinkError
├── UnknownSink    SINKS names a sink no installed package provides
├── SinkConfigError SINKS_FILE cannot be read, or defines a sink wrongly (the message says where, never a secret)
└── PushFailed     one push attempt did not reach the target or was not accepted by it
    └── TargetGone the target answered 410 Gone: no more pushes to it until an operator resumes it
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from delivery.changes import ChangeRecord

__all__ = ["Outgoing", "PushFailed", "PushSink", "Sink", "SinkConfigError", "SinkError", "TargetGone", "UnknownSink"]


class SinkError(Exception):
    """Base of the sinks' errors."""


class UnknownSink(SinkError):
    """SINKS names a sink no installed package provides; the message names it and the installed ones."""


class SinkConfigError(SinkError):
    """SINKS_FILE cannot be read or defines a sink wrongly; the message names the file and the entry."""


class PushFailed(SinkError):
    """A push attempt failed; it counts as an attempt and is tried again after a backoff.

    `retry_after` (seconds) is the target's own wish (a `Retry-After` header), which the backoff never undercuts.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TargetGone(PushFailed):
    """The target said it is gone for good (410): the delivery waits, with every later one to the target, until
    `exact-pipeline deadletters resume`; it spends no attempt and never becomes a dead letter."""


@dataclass(frozen=True)
class Outgoing:
    """One change on its way out of the delivery log."""

    change: ChangeRecord
    accepted_at: datetime  # when the change entered the log: the same on every attempt
    attempt: int  # 1 for the first attempt


@runtime_checkable
class Sink(Protocol):
    """Takes changes inside the caller's transaction, durably and idempotently: the same change twice is one.

    A plugin is a class registered under the entry-point group `exact_pipeline.sinks` and built as `cls(settings)`.
    `accept` returns how many changes it applied (or logged for delivery); duplicates and stale versions count 0.
    A sink with a `route` (`delivery.sinks.routes.Route`) is handed only the changes it admits.
    """

    name: str

    def accept(self, session: Session, changes: Sequence[ChangeRecord]) -> int: ...


@runtime_checkable
class PushSink(Sink, Protocol):
    """A sink that delivers outside the transaction: its `accept` writes the delivery log (`delivery.sinks.outbox`),
    and the delivery tasks call `push` for each logged change, one at a time per key, in version order. A sink whose
    `push` is thread-safe may set `concurrent_pushes` (otherwise 1): how many pushes of different keys one task may
    have in flight at once."""

    def push(self, outgoing: Outgoing) -> None:
        """Deliver one change, or raise PushFailed. It may run more than once for one change (after a crash), so
        the target must dedupe by `outgoing.change.event_id`."""
        ...
