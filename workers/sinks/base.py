"""The sink plugin protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from workers.changes import ChangeRecord

__all__ = ["PushFailed", "PushSink", "Sink"]


class PushFailed(Exception):
    """A push sink could not deliver; `retry` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@runtime_checkable
class Sink(Protocol):
    """Takes changes inside the caller's transaction, durably and idempotently (the same change twice is one)."""

    name: str

    def accept(self, session: Session, changes: Sequence[ChangeRecord]) -> None: ...


@runtime_checkable
class PushSink(Sink, Protocol):
    """A sink that delivers outside the transaction, from the delivery log, one change at a time."""

    def push(self, change: ChangeRecord) -> None: ...
