"""ISO 8601 text for every moment the pipeline shows or sends: UTC, with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

__all__ = ["iso_utc"]


def iso_utc(moment: datetime, *, timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """`2026-11-23T00:00:01.250Z`; a naive value is taken as UTC (SQLite hands stored ones back naive).

    Records and pushes carry milliseconds; `status` and the breaker's `since` show seconds.
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
