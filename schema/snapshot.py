"""The snapshot model: per resource path the envelope, field names and JSON types, date formats and row shape, never a
value; written as stable JSON (sorted keys, indented, newline at the end) so that two snapshots diff cleanly in git.

A field or attribute that is None is one the side does not know (the catalogue knows no envelope or date format; a
refused read knows nothing but its refusal), and a diff compares only what both sides know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DATE_FORMATS",
    "ENVELOPES",
    "FORMAT",
    "JSON_TYPES",
    "Field",
    "Refusal",
    "Resource",
    "Snapshot",
    "Source",
]

# Bump when the JSON layout changes; `from_json` refuses a version it does not know.
FORMAT = 1
Source = Literal["production", "sandbox", "catalogue"]
JSON_TYPES = ("string", "number", "boolean", "null", "object", "array")
# `ms`: `/Date(1718150400000)/`; `iso`: 2024-06-12T00:00:00; `mixed`: both in one page (gotcha 11).
DATE_FORMATS = ("ms", "iso", "mixed")
# `d.results`: a collection page; `d[]`: the bare list Exact gives for `$top`; `d{}`: one record; `none`: not OData.
ENVELOPES = ("d.results", "d[]", "d{}", "none")


@dataclass(frozen=True)
class Field:
    """One field: its JSON type (`null` when every row held null, so no type was seen) and its date format."""

    type: str
    date: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Exact refused the read: its status and message (the message names fields or filters, never a record's value),
    and the fields it said the resource does not have (a `$select` naming a retired field is refused whole)."""

    status: int | None
    message: str
    unknown: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "message": self.message}
        return data | ({"unknown": sorted(self.unknown)} if self.unknown else {})


@dataclass(frozen=True)
class Resource:
    """What one read of a resource showed, or (from the catalogue) what the code expects of it."""

    fields: dict[str, Field] = field(default_factory=dict)
    envelope: str | None = None
    row_shape: Literal["flat", "line_rows"] | None = None
    header_key: str | None = None  # line_rows only: the field the rows of one document share
    page_size: int | None = None  # rows in the page
    next: bool | None = None  # whether the page carried `__next`
    error: Refusal | None = None

    def to_dict(self) -> dict[str, Any]:
        # One line per field in the JSON (name: type), date formats apart: a git diff names each field that moved.
        data: dict[str, Any] = {"fields": {name: f.type for name, f in self.fields.items()}}
        optional = {
            "dates": {name: f.date for name, f in self.fields.items() if f.date} or None,
            "envelope": self.envelope,
            "row_shape": self.row_shape,
            "header_key": self.header_key,
            "page_size": self.page_size,
            "next": self.next,
            "error": self.error.to_dict() if self.error else None,
        }
        return data | {k: v for k, v in optional.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resource:
        error, dates = data.get("error"), data.get("dates", {})
        return cls(
            fields={name: Field(kind, dates.get(name)) for name, kind in data.get("fields", {}).items()},
            envelope=data.get("envelope"),
            row_shape=data.get("row_shape"),
            header_key=data.get("header_key"),
            page_size=data.get("page_size"),
            next=data.get("next"),
            error=Refusal(error.get("status"), str(error.get("message", "")), tuple(error.get("unknown", ())))
            if error
            else None,
        )


@dataclass(frozen=True)
class Snapshot:
    """Every resource by path, with the side it came from; no timestamp, so an unchanged API records the same text."""

    source: Source
    resources: dict[str, Resource]
    format: int = FORMAT

    def to_json(self) -> str:
        data = {
            "format": self.format,
            "source": self.source,
            "resources": {path: r.to_dict() for path, r in sorted(self.resources.items())},
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise ValueError(f"not a schema snapshot of format {FORMAT} (format: {found!r})")
        source = data.get("source")
        if source not in ("production", "sandbox", "catalogue"):
            raise ValueError(f"unknown snapshot source {source!r}")
        resources = {path: Resource.from_dict(r) for path, r in data["resources"].items()}
        return cls(source, resources)
