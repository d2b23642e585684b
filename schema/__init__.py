"""The schema guard (gotcha 14): record Exact's response shapes, diff them with the sandbox and the catalogue."""

from __future__ import annotations

from schema.diff import Change, Report, diff, missing_read_fields
from schema.reads import Read, expected, reads
from schema.record import calls_needed, record
from schema.snapshot import Field, Refusal, Resource, Snapshot

__all__ = [
    "calls_needed",
    "Change",
    "diff",
    "expected",
    "Field",
    "missing_read_fields",
    "Read",
    "reads",
    "record",
    "Refusal",
    "Report",
    "Resource",
    "Snapshot",
]
