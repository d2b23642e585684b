"""How the data plane shapes records: only the resource's fields, `/Date(ms)/` dates, navigation properties
deferred (`{"__deferred":{"uri":…}}`) or, when `$expand` names them, expanded (`{"results":[…]}`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox import documents, odata
from sandbox.documents import Store
from sandbox.entities import Entity, line_of

__all__ = ["Shaper", "key_literal"]


def key_literal(value: Any) -> str:
    """How a key appears in a URI: `guid'…'`, or `'EUR'` for a Code key."""
    text = str(value)
    return f"guid'{text}'" if len(text) == 36 and text.count("-") == 4 else "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Shaper:
    """Shapes the records of one division for one request (`base` is the sandbox URL the caller used)."""

    store: Store
    division: int
    base: str

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
        return out

    def sync_record(self, entity: Entity, row: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
        """A sync row: the sync resource's fields; its navigation properties (if any) deferred."""
        names = tuple(select) if select is not None else entity.sync_fields
        key = row.get("ID") or row.get(entity.key)
        uri = self.uri(entity.sync_path or entity.path, key)
        out = odata.serialize(row, select=names, uri=uri, type_name=entity.sync_type_name)
        for name in names:
            if name in entity.sync_navs:
                out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
        return out
