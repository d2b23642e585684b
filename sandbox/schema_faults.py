"""Schema faults: a resource's answers drop or rename a field, serve a date as ISO 8601, or change their row shape.

Armed through `/_sandbox/faults` with `{"kind": "schema", "path": …}` (see `faults`); unlike the other faults they
hold until `DELETE /_sandbox/faults`. They play Exact changing under a client: a field retired or renamed, a date
served as ISO 8601 instead of `/Date(ms)/`, a line-row sync resource answering one row per document
(`"rows": "headers"`: the document's fields only, keyed by the header key, no line `ID`), or a document's service
resource answering one row per line (`"rows": "lines"`: the header's fields then the line's, keyed by the line `ID`).

A fault names fields as the resource serves them without faults. It is applied where records are shaped
(`shapes`), so list, keyed, create, sync and expanded answers all show it; an expanded line is a record of its line
resource (a fault on `salesinvoice/SalesInvoiceLines` changes the lines of an expanded invoice, one on
`salesinvoice/SalesInvoices` the invoice itself). Query options see the served schema, as Exact's do: a dropped
field, or the old name of a renamed one, in `$select`, `$filter` or `$orderby` is the same 400 as any field the
resource does not have ("$select: unknown field(s) Email"); the new name is accepted. Faults on one path compose.
They hit the resources the store keeps, not current/Me, system/Divisions or sync/Deleted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.entities import Entity, by_path, by_sync_path
from sandbox.odata import QueryOptions
from sandbox.odata_filter import Predicate

__all__ = ["NO_FAULTS", "RowShape", "SchemaFault", "SchemaFaultBody", "SchemaFaults", "SchemaView"]

RowShape = Literal["headers", "lines"]
_MS_DATE = re.compile(r"^/Date\((-?\d+)\)/$")


def _iso(value: Any) -> Any:
    """`/Date(ms)/` as ISO 8601 in UTC (`2026-12-01T10:30:00.000Z`); anything else as it is."""
    if not isinstance(value, str) or (m := _MS_DATE.match(value)) is None:
        return value
    moment = datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _renamed(predicate: Predicate, rename: Mapping[str, str]) -> Predicate:
    """A `$filter` over served names, evaluated on a stored row."""

    def test(row: Mapping[str, Any]) -> bool:
        return predicate({**row, **{served: row.get(name) for name, served in rename.items()}})

    return test


@dataclass(frozen=True)
class SchemaView:
    """The schema faults of one resource for one call, combined. Names are the unfaulted ones unless `served`."""

    drop: frozenset[str] = frozenset()
    rename: Mapping[str, str] = field(default_factory=dict)  # unfaulted name → served name
    iso: frozenset[str] = frozenset()
    rows: RowShape | None = None

    def served(self, fields: Sequence[str]) -> tuple[str, ...]:
        """The names a query option may use."""
        return tuple(self.rename.get(n, n) for n in fields if n not in self.drop)

    def options(self, options: QueryOptions) -> QueryOptions:
        """Options parsed against the served names, turned back into the store's names."""
        if not self.rename:
            return options
        back = {served: name for name, served in self.rename.items()}
        predicate = options.predicate
        return replace(
            options,
            predicate=None if predicate is None else _renamed(predicate, self.rename),
            select=None if options.select is None else tuple(back.get(n, n) for n in options.select),
            orderby=tuple((back.get(n, n), desc) for n, desc in options.orderby),
        )

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """A shaped record as the faulty resource serves it; a renamed field keeps its place."""
        if not (self.drop or self.rename or self.iso):
            return record
        out: dict[str, Any] = {}
        for name, value in record.items():
            if name not in self.drop:
                out[self.rename.get(name, name)] = _iso(value) if name in self.iso else value
        return out


NO_FAULTS = SchemaView()


@dataclass(frozen=True)
class SchemaFault:
    path: str
    division: int | None = None
    drop: tuple[str, ...] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    date_format: Mapping[str, str] = field(default_factory=dict)
    rows: RowShape | None = None

    def matches(self, path: str, division: int | None) -> bool:
        return self.path.lower() == path.lower() and (self.division is None or self.division == division)

    def snapshot(self) -> dict[str, object]:
        return {
            "kind": "schema",
            "path": self.path,
            "division": self.division,
            "drop": list(self.drop),
            "rename": dict(self.rename),
            "date_format": dict(self.date_format),
            "rows": self.rows,
        }


@dataclass
class SchemaFaults:
    """The schema faults armed; they hold until cleared."""

    active: list[SchemaFault] = field(default_factory=list)

    def add(self, fault: SchemaFault) -> None:
        self.active.append(fault)

    def clear(self) -> None:
        self.active.clear()

    def view(self, path: str, division: int | None) -> SchemaView:
        hits = [f for f in self.active if f.matches(path, division)]
        if not hits:
            return NO_FAULTS
        return SchemaView(
            drop=frozenset(name for f in hits for name in f.drop),
            rename={name: served for f in hits for name, served in f.rename.items()},
            iso=frozenset(name for f in hits for name, fmt in f.date_format.items() if fmt == "iso"),
            rows=next((f.rows for f in reversed(hits) if f.rows), None),
        )

    def snapshot(self) -> list[dict[str, object]]:
        return [f.snapshot() for f in self.active]


def _resource(path: str) -> tuple[Entity, tuple[str, ...], bool] | None:
    """The entity of a path, the fields it serves there, and whether the path is its sync resource."""
    if (entity := by_sync_path(path)) is not None:
        return entity, entity.sync_fields, True
    if (entity := by_path(path)) is not None and entity.service:
        return entity, entity.fields, False
    return None


class SchemaFaultBody(BaseModel):
    """`POST /_sandbox/faults` with `"kind": "schema"`; `endpoint` is taken for `path`, as the other kinds name it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["schema"]
    path: str = Field(validation_alias=AliasChoices("path", "endpoint"))
    division: int | None = None
    drop: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    date_format: dict[str, Literal["iso"]] = Field(default_factory=dict)
    rows: RowShape | None = None

    @field_validator("drop", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fits_the_resource(self) -> SchemaFaultBody:
        if not (self.drop or self.rename or self.date_format or self.rows):
            raise ValueError("a schema fault needs `drop`, `rename`, `date_format` or `rows`")
        found = _resource(self.path)
        if found is None:
            raise ValueError(f"the sandbox serves no resource {self.path}")
        entity, fields, is_sync = found
        unknown = sorted({*self.drop, *self.rename, *self.date_format} - set(fields))
        if unknown:
            raise ValueError(f"{self.path} has no field(s) {', '.join(unknown)}")
        if clash := sorted(set(self.rename.values()) & set(fields)):
            raise ValueError(f"a rename onto a field {self.path} already has: {', '.join(clash)}")
        if self.rows == "headers" and not (is_sync and entity.line_rows):
            raise ValueError(f"`rows: headers` needs a line-row sync resource; {self.path} is not one")
        if self.rows == "lines" and (is_sync or not entity.is_document):
            raise ValueError(f"`rows: lines` needs a document's service resource; {self.path} is not one")
        return self

    def fault(self) -> SchemaFault:
        return SchemaFault(
            path=self.path,
            division=self.division,
            drop=tuple(self.drop),
            rename=dict(self.rename),
            date_format=dict(self.date_format),
            rows=self.rows,
        )
