"""What the project reads and writes of each resource the catalogue names, and the snapshot the code expects of it.

Per entity: the read resource (its sync path, else its service path) with `Entity.select()`; the service path behind
a sync path, read by writes and references, with what they read of it; the lines resource, with the line fields.
Everything is restricted to the fields the reference lists for that resource, so a `$select` never names a field
the resource cannot have.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from exact import Catalogue, Entity, datetime_literal, int64_literal
from schema.snapshot import Field, Resource, Snapshot

__all__ = ["EPOCH", "Read", "expected", "json_type", "reads"]

# From the start of time: some resources refuse a read without `$filter` (crm/Accounts), as in sync's `modified_walk`.
EPOCH = datetime(1900, 1, 1)
_REFERENCE_TYPES = {"string": "string", "int": "number", "float": "number", "bool": "boolean"}


@dataclass(frozen=True)
class Read:
    """One resource as the project uses it: the fields it reads (`select`), those it writes (read names), the one
    GET that records it, and the row shape the catalogue expects."""

    path: str
    select: tuple[str, ...]
    writes: tuple[str, ...] = ()
    filter: str | None = None
    expand: str | None = None
    header_key: str | None = None  # the document key its rows carry (line rows, lines resources)
    shape: Literal["flat", "line_rows"] = "flat"

    @property
    def used(self) -> frozenset[str]:
        """Every field the project reads or writes of it: a difference in one of them is breaking."""
        return frozenset((*self.select, *self.writes))


def json_type(reference_type: str) -> str:
    """The reference's type (`string`, `int`, `float`, `bool`, `X[]`, a complex type) as a JSON type."""
    if reference_type.endswith("[]"):
        return "array"
    return _REFERENCE_TYPES.get(reference_type, "object")


def reads(catalogue: Catalogue) -> dict[str, Read]:
    """Every resource the catalogue reads or writes, by path, in catalogue order; one entry per path."""
    found: dict[str, Read] = {}
    for entity in catalogue.entities.values():
        for read in _entity_reads(catalogue, entity):
            found[read.path] = _merge(found[read.path], read) if read.path in found else read
    for spec in catalogue.references.values():
        extra = Read(spec.path, tuple(dict.fromkeys((spec.writes, spec.match))))
        found[spec.path] = _merge(found[spec.path], extra) if spec.path in found else extra
    return found


def _entity_reads(catalogue: Catalogue, entity: Entity) -> list[Read]:
    reference = catalogue.reference
    lines, write = entity.lines, entity.write
    document_key = entity.key if lines is not None else None
    result: list[Read] = []
    if entity.sync_path:
        select = tuple(dict.fromkeys(("Timestamp", *entity.select())))
        shape: Literal["flat", "line_rows"] = "line_rows" if entity.shape == "line_rows" else "flat"
        flt = f"Timestamp gt {int64_literal(1)}"
        result.append(Read(entity.sync_path, select, filter=flt, header_key=document_key, shape=shape))
    if entity.path:
        has = reference.fields(entity.path)
        expand = lines.name if entity.shape == "expanded" and lines is not None else None
        wanted = entity.select() if entity.sync_path is None else [entity.key, *entity.select()]
        writes = [*write.fields, *write.read_only] if write else []
        select = _known([*wanted, *writes], has)
        # The document key here too: a header resource repeating it (one row per line) is a row shape changed.
        key = document_key if document_key in has else None
        result.append(Read(entity.path, select, _known(writes, has), _modified(has), expand, header_key=key))
    if lines is not None:
        has = reference.fields(lines.path)
        line_write = write.lines if write else None
        writes = [line_write.read_names.get(n, n) for n in line_write.fields] if line_write else []
        select = _known(["ID", entity.key, *lines.fields, *writes], has)
        key = entity.key if entity.key in has else None
        shape = "line_rows" if key else "flat"
        result.append(Read(lines.path, select, _known(writes, has), _modified(has), header_key=key, shape=shape))
    return result


def _known(names: Iterable[str], has: dict[str, str]) -> tuple[str, ...]:
    return tuple(n for n in dict.fromkeys(names) if n in has)


def _modified(has: dict[str, str]) -> str | None:
    return f"Modified ge {datetime_literal(EPOCH)}" if "Modified" in has else None


def _merge(a: Read, b: Read) -> Read:
    return Read(
        a.path,
        tuple(dict.fromkeys((*a.select, *b.select))),
        tuple(dict.fromkeys((*a.writes, *b.writes))),
        a.filter or b.filter,
        a.expand or b.expand,
        a.header_key or b.header_key,
        "line_rows" if "line_rows" in (a.shape, b.shape) else "flat",
    )


def expected(catalogue: Catalogue) -> Snapshot:
    """The code's expectation: each resource's fields the project reads or writes, typed from the reference, and
    the row shape the catalogue names; no envelope, date format or page (the code does not know them)."""
    resources: dict[str, Resource] = {}
    for path, read in reads(catalogue).items():
        types = catalogue.reference.fields(path)
        fields = {name: Field(json_type(types[name])) for name in read.select}
        header_key = read.header_key if read.shape == "line_rows" else None
        resources[path] = Resource(fields=fields, row_shape=read.shape, header_key=header_key)
    return Snapshot("catalogue", resources)
