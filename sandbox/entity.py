"""One resource the sandbox keeps (`Entity`), over `resources.json`, the sandbox's trimmed copy of the reference.

`resources.json` is read on first use; FIELD_REPORTS holds where production is reported to differ from it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DOCUMENT_SHARED", "FIELD_REPORTS", "RESOURCES", "Entity", "fields_of", "resource", "written_as"]

RESOURCES = Path(__file__).with_name("resources.json")
_PRIMITIVE = frozenset({"string", "int", "float", "bool"})


@functools.cache
def _resources() -> dict[str, dict[str, Any]]:
    data = json.loads(RESOURCES.read_text(encoding="utf-8"))
    return {r["url"].lower(): r for r in data["resources"]}


def resource(path: str) -> dict[str, Any]:
    return _resources()[path.lower()]


# A document's lines carry the same value of these as the document: an entry's journal, number, period and date, a
# delivery's date (Exact keeps them once, on the header; a line row repeats them).
DOCUMENT_SHARED = (
    "EntryNumber",
    "JournalCode",
    "JournalDescription",
    "FinancialYear",
    "FinancialPeriod",
    "Date",
    "Currency",
    "DeliveryDate",
)
# Where production is reported to differ from the reference: path → {reference name: the name reads return}.
# Gotcha 5: purchase-order lines take `Quantity` on a write and read it back as `QuantityOrdered`.
FIELD_REPORTS: dict[str, dict[str, str]] = {
    "purchaseorder/purchaseorderlines": {"Quantity": "QuantityOrdered"},
    "sync/purchaseorder/purchaseorders": {"Quantity": "QuantityOrdered"},
}


def written_as(path: str) -> dict[str, str]:
    """Read name → the name a write gives it, for the fields of `path` that FIELD_REPORTS renames."""
    return {read: written for written, read in FIELD_REPORTS.get(path.lower(), {}).items()}


@functools.cache
def fields_of(path: str) -> tuple[tuple[str, str], ...]:
    """(name, type) of every field of the resource as production serves it: the reference's, FIELD_REPORTS applied."""
    renames = FIELD_REPORTS.get(path.lower(), {})
    return tuple((renames.get(name, name), type_) for name, type_ in resource(path)["fields"])


@dataclass(frozen=True)
class Entity:
    """One resource the store keeps. A line resource names its document's path in `header_path`."""

    path: str
    key: str = "ID"
    topic: str | None = None  # webhook topic; None: Exact sends no webhook for it
    sync_path: str | None = None
    entity_type: int | None = None  # sync/Deleted EntityType of a record (of a document's header)
    line_entity_type: int | None = None  # sync/Deleted EntityType of one line
    mandatory_filter: bool = False
    lines: str | None = None  # the lines nav property of a document
    line_path: str | None = None
    line_rows: bool = False  # the sync resource returns one row per line
    header_path: str | None = None
    service: bool = True  # False: only the sync resource exists (StockPositions)
    link: str | None = None  # the field a line names its document by, when not the header's key (`InvoiceID`)

    @property
    def line_link(self) -> str:
        """The field of each line that holds this document's key."""
        return self.link or self.key

    @functools.cached_property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _ in fields_of(self.path))

    @functools.cached_property
    def data_fields(self) -> tuple[str, ...]:
        """The stored fields: every field but navigation properties."""
        return tuple(name for name, type_ in fields_of(self.path) if type_ in _PRIMITIVE)

    @functools.cached_property
    def navs(self) -> frozenset[str]:
        return frozenset(name for name, type_ in fields_of(self.path) if type_ not in _PRIMITIVE)

    @functools.cached_property
    def sync_fields(self) -> tuple[str, ...]:
        return tuple(name for name, _ in fields_of(self.sync_path or self.path))

    @functools.cached_property
    def sync_navs(self) -> frozenset[str]:
        return frozenset(name for name, type_ in fields_of(self.sync_path or self.path) if type_ not in _PRIMITIVE)

    @functools.cached_property
    def sync_type_name(self) -> str:
        return f"Exact.Web.Api.Models.{resource(self.sync_path or self.path)['class']}"

    @functools.cached_property
    def methods(self) -> frozenset[str]:
        return frozenset(resource(self.path)["methods"])

    @functools.cached_property
    def type_name(self) -> str:
        return f"Exact.Web.Api.Models.{resource(self.path)['class']}"

    @functools.cached_property
    def is_document(self) -> bool:
        return self.line_path is not None
