"""`diff(a, b)`: per resource, fields added or missing, types, date formats, row shapes and envelopes changed, reads
refused; breaking when a difference touches a field the project reads or writes, a row shape, an envelope or a read.

`a` is the baseline (a recorded production snapshot, the catalogue), `b` what is compared with it: `missing` is in
`a` only, `added` in `b` only. A field the project uses that one side lacks is breaking whichever side lacks it
(`schema diff schema/sandbox.json catalogue` is the CI guard); an addition the project does not use is not.
Each side is compared only where it knows something: the catalogue knows no envelope or date format, an empty
page no row shape, a `null` type no type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from exact import Catalogue
from schema.reads import reads
from schema.snapshot import Resource, Snapshot

__all__ = ["Change", "Kind", "Report", "diff", "missing_read_fields"]

Kind = Literal[
    "added",
    "missing",
    "type",
    "date_format",
    "row_shape",
    "envelope",
    "refused",
    "resource",
    "no_rows",
    "page_size",
    "next",
]


@dataclass(frozen=True)
class Change:
    """One difference of one resource; `field` is None for a difference of the whole resource."""

    resource: str
    kind: Kind
    field: str | None
    a: str | None
    b: str | None
    breaking: bool


@dataclass(frozen=True)
class Report:
    """Every difference of `b` against `a`, resources in path order."""

    a: str
    b: str
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "breaking": self.breaking,
            "changes": [asdict(c) for c in self.changes],
        }


def diff(a: Snapshot, b: Snapshot, catalogue: Catalogue) -> Report:
    """The differences of `b` against `a`; `catalogue` says which fields of each resource the project uses."""
    used = {path: read.used for path, read in reads(catalogue).items()}
    changes: list[Change] = []
    for path in sorted({*a.resources, *b.resources}):
        ra, rb = a.resources.get(path), b.resources.get(path)
        if ra is None or rb is None:
            # Only one side read it (a snapshot of another catalogue): breaking if the code reads it now.
            changes.append(Change(path, "resource", None, _present(ra), _present(rb), path in used))
            continue
        changes.extend(_resource(path, ra, rb, used.get(path, frozenset())))
    return Report(a.source, b.source, changes)


def _present(resource: Resource | None) -> str | None:
    return "recorded" if resource is not None else None


def _resource(path: str, a: Resource, b: Resource, used: frozenset[str]) -> Iterator[Change]:
    if a.error or b.error:
        if a.error != b.error:
            yield Change(path, "refused", None, _refusal(a), _refusal(b), True)
            yield from _refused_fields(path, a, b, used)
        return  # a refused read shows no fields to compare
    if a.envelope and b.envelope and a.envelope != b.envelope:
        yield Change(path, "envelope", None, a.envelope, b.envelope, True)
    if a.row_shape and b.row_shape and (a.row_shape, a.header_key) != (b.row_shape, b.header_key):
        yield Change(path, "row_shape", None, _shape(a), _shape(b), True)
    if 0 in (a.page_size, b.page_size):
        # An empty page shows no field: nothing to compare, which is worth saying but is no drift.
        yield Change(path, "no_rows", None, _rows(a), _rows(b), False)
    else:
        yield from _fields(path, a, b, used)
    # Reported, never breaking: a page's size and whether it links on say nothing of the fields the code reads.
    if a.page_size is not None and b.page_size is not None and a.page_size != b.page_size:
        yield Change(path, "page_size", None, str(a.page_size), str(b.page_size), False)
    if a.next is not None and b.next is not None and a.next != b.next:
        yield Change(path, "next", None, str(a.next), str(b.next), False)


def _refused_fields(path: str, a: Resource, b: Resource, used: frozenset[str]) -> Iterator[Change]:
    """Exact refuses a whole `$select` that names a field it no longer has; the refusal names it, so say which."""
    for name in a.error.unknown if a.error else ():
        if name in b.fields:
            yield Change(path, "added", name, None, b.fields[name].type, name in used)
    for name in b.error.unknown if b.error else ():
        if name in a.fields:
            yield Change(path, "missing", name, a.fields[name].type, None, name in used)


def _fields(path: str, a: Resource, b: Resource, used: frozenset[str]) -> Iterator[Change]:
    for name in sorted({*a.fields, *b.fields}):
        fa, fb = a.fields.get(name), b.fields.get(name)
        touches = name in used
        if fb is None:
            yield Change(path, "missing", name, fa.type if fa else None, None, touches)
        elif fa is None:
            yield Change(path, "added", name, None, fb.type, touches)
        else:
            if "null" not in (fa.type, fb.type) and fa.type != fb.type:
                yield Change(path, "type", name, fa.type, fb.type, touches)
            if fa.date and fb.date and fa.date != fb.date:
                yield Change(path, "date_format", name, fa.date, fb.date, touches)


def _rows(resource: Resource) -> str | None:
    return None if resource.page_size is None else f"{resource.page_size} rows"


def _refusal(resource: Resource) -> str:
    if resource.error is None:
        return "read"
    return f"{resource.error.status}: {resource.error.message}"


def _shape(resource: Resource) -> str:
    return f"line_rows by {resource.header_key}" if resource.row_shape == "line_rows" else str(resource.row_shape)


def missing_read_fields(snapshot: Snapshot, catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    """Per resource, the fields the project reads or writes that the snapshot's read did not return (what `status`
    flags). A refused read lists the fields its refusal named as unknown; a resource the snapshot lacks, or whose
    page was empty, is not listed here (`diff` reports it as `resource` or `no_rows`)."""
    missing: dict[str, tuple[str, ...]] = {}
    for path, read in reads(catalogue).items():
        resource = snapshot.resources.get(path)
        if resource is not None and resource.error is not None:
            lacking = tuple(sorted(read.used & set(resource.error.unknown)))
        elif resource is None or resource.page_size == 0:
            continue
        else:
            lacking = tuple(sorted(read.used - set(resource.fields)))
        if lacking:
            missing[path] = lacking
    return missing
