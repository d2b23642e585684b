"""How the data plane shapes records: only the resource's fields, `/Date(ms)/` dates, navigation properties
deferred (`{"__deferred":{"uri":…}}`) or, when `$expand` names them, expanded (`{"results":[…]}`); and the one place
every record passes, so the schema faults armed for its resource (`schema_faults`) change it here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox import documents, odata
from sandbox.documents import Store
from sandbox.entities import Entity, line_of
from sandbox.schema_faults import SchemaFaults

__all__ = ["Shaper", "header_row_fields", "key_literal", "line_row_fields"]


def key_literal(value: Any) -> str:
    """How a key appears in a URI: `guid'…'`, or `'EUR'` for a Code key."""
    text = str(value)
    return f"guid'{text}'" if len(text) == 36 and text.count("-") == 4 else "'" + text.replace("'", "''") + "'"


def header_row_fields(entity: Entity) -> tuple[str, ...]:
    """A line-row sync resource answering one row per document: its fields the document has (no line `ID`)."""
    header = {*entity.fields, "Timestamp"}
    return tuple(name for name in entity.sync_fields if name in header)


def line_row_fields(entity: Entity) -> tuple[str, ...]:
    """A document's service resource answering one row per line: the header's stored fields, then the line's."""
    return tuple(dict.fromkeys([*entity.data_fields, *line_of(entity).data_fields]))


@dataclass(frozen=True)
class Shaper:
    """Shapes the records of one division for one request (`base` is the sandbox URL the caller used)."""

    store: Store
    division: int
    base: str
    faults: SchemaFaults | None = None

    def _served(self, path: str, record: dict[str, Any]) -> dict[str, Any]:
        return record if self.faults is None else self.faults.view(path, self.division).apply(record)

    def uri(self, path: str, key: Any) -> str:
        return f"{self.base}/api/v1/{self.division}/{path}({key_literal(key)})"

    def record(
        self, entity: Entity, row: dict[str, Any], select: Sequence[str] | None, expand: Sequence[str]
    ) -> dict[str, Any]:
        """A service record: its fields (or `$select`'s), its navigation properties deferred or expanded."""
        names = tuple(select) if select is not None else entity.fields
        navs = [n for n in names if n in entity.navs]
        uri = self.uri(entity.path, row.get(entity.key))
        out = odata.serialize(row, select=[n for n in names if n not in navs], uri=uri, type_name=entity.type_name)
        for nav in navs:
            if nav not in expand:
                out[nav] = {"__deferred": {"uri": f"{uri}/{nav}"}}
            elif nav == entity.lines:
                line = line_of(entity)
                lines = documents.lines_of(self.store, self.division, entity, row[entity.key])
                out[nav] = {"results": [self.record(line, x, None, ()) for x in lines]}
            else:
                out[nav] = {"results": []}  # a collection the sandbox does not keep (order charge lines, ...)
        return self._served(entity.path, out)

    def sync_record(self, entity: Entity, row: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
        """A sync row: the sync resource's fields; its navigation properties (if any) deferred."""
        names = tuple(select) if select is not None else entity.sync_fields
        key = row.get("ID") or row.get(entity.key)
        uri = self.uri(entity.sync_path or entity.path, key)
        out = odata.serialize(row, select=names, uri=uri, type_name=entity.sync_type_name)
        for name in names:
            if name in entity.sync_navs:
                out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
        return self._served(entity.sync_path or entity.path, out)

    def line_row(self, entity: Entity, row: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
        """A document's record as one of its line rows (a `rows: lines` schema fault): keyed by the line's ID."""
        names = tuple(select) if select is not None else line_row_fields(entity)
        line = line_of(entity)
        out = odata.serialize(row, select=names, uri=self.uri(line.path, row["ID"]), type_name=line.type_name)
        return self._served(entity.path, out)
