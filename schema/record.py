"""`record`: one GET per resource the catalogue reads or writes, through the client (its rate and error budgets), kept
as names, types, date formats and shapes only: no value of a record ever reaches the snapshot.

Regenerate the committed sandbox snapshot with `exact-pipeline schema record --sandbox --yes --out schema/sandbox.json`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from exact import ApiError, Catalogue, ExactClient, Query
from schema.reads import Read, reads
from schema.snapshot import Field, Refusal, Resource, Snapshot, Source

__all__ = ["calls_needed", "observe", "record"]

_MS_DATE = re.compile(r"^/Date\(-?\d+(?:[+-]\d{4})?\)/$")
# How Exact (WCF: "No property 'X' exists in type …") and the sandbox ("$select: unknown field(s) X") refuse a field.
_UNKNOWN_FIELD = re.compile(r"no property|unknown field|not a (?:valid )?property|does not exist", re.IGNORECASE)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")


def calls_needed(catalogue: Catalogue) -> int:
    """How many calls `record` makes: one per resource."""
    return len(reads(catalogue))


def record(client: ExactClient, division: int, catalogue: Catalogue, *, source: Source = "production") -> Snapshot:
    """One GET of each resource; a refusal (4xx, or a 500 Exact means) is kept as the resource's error. A rate limit
    the budget cannot wait out, an auth failure or an unavailable Exact stops the recording (a partial snapshot
    would read as drift)."""
    resources: dict[str, Resource] = {}
    for path, read in reads(catalogue).items():
        query = Query(filter=read.filter, select=list(read.select), expand=read.expand)
        try:
            response = client.request("GET", division, path, params=query.params())
        except ApiError as exc:
            resources[path] = Resource(error=Refusal(exc.status, exc.message, _unknown(exc.message, read)))
            continue
        resources[path] = observe(response.json(), read)
    return Snapshot(source, resources)


def _unknown(message: str, read: Read) -> tuple[str, ...]:
    """The fields of the `$select` a refusal names as ones the resource does not have (none for another refusal)."""
    if not _UNKNOWN_FIELD.search(message):
        return ()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", message))
    return tuple(sorted(name for name in read.select if name in words))


def observe(body: Any, read: Read) -> Resource:
    """What one answer shows: its envelope, each field's JSON type and date format, its row shape and page."""
    envelope, rows, has_next = _envelope(body)
    return Resource(
        fields=_fields(rows),
        envelope=envelope,
        page_size=len(rows),
        next=has_next,
        **_shape(rows, read.header_key),
    )


def _envelope(body: Any) -> tuple[str, list[Mapping[str, Any]], bool]:
    data = body.get("d") if isinstance(body, dict) else None
    if isinstance(data, list):
        return "d[]", [r for r in data if isinstance(r, Mapping)], False
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        rows = [r for r in data["results"] if isinstance(r, Mapping)]
        return "d.results", rows, bool(data.get("__next"))
    if isinstance(data, dict):
        return "d{}", [data], False
    return "none", [], False


def _fields(rows: Iterable[Mapping[str, Any]]) -> dict[str, Field]:
    types: dict[str, set[str]] = {}
    dates: dict[str, set[str]] = {}
    for row in rows:
        for name, value in row.items():
            if name == "__metadata":
                continue
            types.setdefault(name, set()).add(_json_type(value))
            if isinstance(value, str) and (form := _date_format(value)):
                dates.setdefault(name, set()).add(form)
    fields: dict[str, Field] = {}
    for name, seen in types.items():
        known = sorted(seen - {"null"})
        # Several types in one page is itself drift; keep them all, `|`-joined, so the diff shows it.
        kind = "|".join(known) if known else "null"
        forms = dates.get(name, set())
        fields[name] = Field(kind, ("mixed" if len(forms) > 1 else next(iter(forms))) if forms else None)
    return fields


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping) and isinstance(value.get("results"), list):
        return "array"  # an expanded collection, `{"results": [...]}` in OData v2
    return "object"


def _date_format(value: str) -> str | None:
    if _MS_DATE.match(value):
        return "ms"
    if _ISO_DATE.match(value):
        return "iso"
    return None


def _shape(rows: list[Mapping[str, Any]], header_key: str | None) -> dict[str, Any]:
    """`line_rows` when rows share the document key with distinct IDs (one row per line), else `flat`; nothing
    when the page is empty (no rows, no evidence)."""
    if not rows:
        return {}
    if header_key is not None:
        ids: dict[str, set[str]] = {}
        for index, row in enumerate(rows):
            key = row.get(header_key)
            if key is not None:
                # A row without an ID counts on its own: a header resource repeating its key is one row per line.
                ids.setdefault(str(key), set()).add(str(row["ID"]) if row.get("ID") is not None else f"#{index}")
        if any(len(lines) > 1 for lines in ids.values()):
            return {"row_shape": "line_rows", "header_key": header_key}
    return {"row_shape": "flat"}
