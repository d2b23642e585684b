"""The one normal form in which a change leaves the workers for every sink."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ChangeRecord"]


@dataclass(frozen=True)
class ChangeRecord:
    """One version of one record. `version` is monotonic per key: the sync `Timestamp` where the topic has a sync
    endpoint, else `Modified` (or, for a delete, the event time) in epoch milliseconds."""

    division: int
    topic: str
    key: str
    action: str  # "Update" | "Delete"
    record: dict[str, Any] | None
    version: int

    @property
    def event_id(self) -> str:
        """Stable for this version of this change: sinks dedupe by it, and it is the push's `webhook-id`."""
        return f"{self.division}:{self.topic}:{self.key}:{self.version}:{self.action}"
