"""The one normal form in which a change leaves the workers for every sink."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["COMMANDS_TOPIC", "ChangeRecord", "event_id_of"]

# The topic under which command results reach the sinks (push type `exact.Commands.updated`).
COMMANDS_TOPIC = "Commands"


def event_id_of(division: int, topic: str, key: str, version: int, action: str) -> str:
    """Stable for one version of one change: sinks dedupe by it, and it is the push's `webhook-id`."""
    return f"{division}:{topic}:{key}:{version}:{action}"


@dataclass(frozen=True)
class ChangeRecord:
    """One change of one record, in the normal form every sink receives.

    `version` is monotonic per key: the sync `Timestamp` when known, else `Modified` (or, for a delete, the event
    time) in epoch milliseconds. `event_id` may be left out; it is then derived from the other fields. `origin`
    (`delivery.origin`) says who made the version, a command or someone in Exact; it is no part of the event id.
    """

    division: int
    topic: str  # Exact webhook topic, e.g. "Accounts"
    key: str  # the record's guid, lower case
    action: str  # "Update" | "Delete"
    record: dict[str, Any] | None  # normalised record (None for Delete)
    version: int
    event_id: str = ""
    origin: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.event_id:
            # Frozen: the derived id is set once, here, and never changes after.
            object.__setattr__(
                self, "event_id", event_id_of(self.division, self.topic, self.key, self.version, self.action)
            )
