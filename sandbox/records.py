"""What the store shares with its write rules and listeners: the change event and the write errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Action", "Change", "Listener", "NotFoundError", "WriteError"]


class Action(StrEnum):
    """A webhook's `Action`; creates are `Update` too, because Exact has no Create."""

    UPDATE = "Update"
    DELETE = "Delete"


@dataclass(frozen=True)
class Change:
    """A record changed; the webhook hub turns it into a delivery."""

    division: int
    topic: str
    key: str
    action: Action
    resource_path: str
    created_at: float


class WriteError(ValueError):
    """A write Exact refuses with 400; the message is Exact's."""


class NotFoundError(LookupError):
    """No such record (404)."""


Listener = Callable[[Change], None]
