"""What the seed shares: the store's writes it needs and the pool of one division's records that others link to."""

from __future__ import annotations

import random
from typing import Any, Protocol

from sandbox import values
from sandbox.entities import Entity, written_as

__all__ = ["Pool", "Row", "SeedTarget"]

Row = dict[str, Any]


class SeedTarget(Protocol):
    """The store's writes the seed needs (a protocol, so the store can seed itself without an import cycle)."""

    rng: random.Random
    default_user_id: str

    def add_division(self, code: int, **fields: Any) -> None: ...

    def add_user(self, user_id: str, granted: set[int], **fields: Any) -> None: ...

    def insert(self, division: int, entity: Entity, row: Row) -> Row: ...

    def table(self, division: int, path: str) -> dict[str, Row]: ...


class Pool:
    """The records of one division that others link to, filled as the seed goes."""

    def __init__(self, store: SeedTarget, division: int) -> None:
        self.store = store
        self.division = division
        self.rng = store.rng
        self.count = 0
        self.user: Row = {"ID": store.default_user_id, "FullName": "Sandra Sandbox", "Name": "Sandra Sandbox"}
        self.by_kind: dict[str, list[Row]] = {}
        self.gl: dict[str, Row] = {}
        self.vat: dict[str, Row] = {}

    def kind(self, name: str) -> list[Row]:
        return self.by_kind.setdefault(name, [])

    def pick(self, name: str, n: int) -> Row | None:
        rows = self.by_kind.get(name)
        return rows[n % len(rows)] if rows else None

    def new(self, entity: Entity, n: int, **fields: Any) -> Row:
        """Every field filled, the links made, `fields` on top; not stored yet."""
        self.count += 1
        row = values.filler(entity, self.rng, self.count)
        row[entity.key] = values.guid(self.rng) if entity.key != "Code" else row[entity.key]
        self.links(row, n)
        # A field the resource lacks is not stored; one production renames (gotcha 5) is stored under its read name.
        reported = written_as(entity.path).items()
        renamed = {read: fields[written] for read, written in reported if read in row and written in fields}
        row.update({k: v for k, v in fields.items() if k in row} | renamed)
        return row

    def add(self, entity: Entity, n: int, *, kind: str | None = None, **fields: Any) -> Row:
        row = self.store.insert(self.division, entity, self.new(entity, n, **fields))
        if kind:
            self.kind(kind).append(row)
        return row

    def links(self, row: Row, n: int) -> None:
        for field, kind in _LINKS:
            if field in row:
                target = self.user if kind == "user" else self.pick(kind, n + len(field))
                values.link(row, field, target, key="EntryID" if kind == "subscriptions" else "ID")
        for field, code in (("GLAccount", "8000"), ("GLRevenue", "8000"), ("GLCosts", "4000"), ("GLStock", "4000")):
            if field in row:
                values.link(row, field, self.gl.get(code))
        for field in ("VATCode", "SalesVatCode", "SalesVATCode", "PurchaseVATCode"):
            if field in row and row[field] in self.vat:
                values.link(row, field, self.vat[row[field]], key="Code")


_LINKS = (
    ("Account", "accounts"),
    ("InvoiceTo", "customers"),
    ("OrderedBy", "customers"),
    ("DeliverTo", "customers"),
    ("DeliveryAccount", "customers"),
    ("InvoiceAccount", "customers"),
    ("OrderAccount", "customers"),
    ("Supplier", "suppliers"),
    ("Contact", "contacts"),
    ("MainContact", "contacts"),
    ("InvoiceToContactPerson", "contacts"),
    ("OrderedByContactPerson", "contacts"),
    ("DeliverToContactPerson", "contacts"),
    ("DeliveryContact", "contacts"),
    ("SupplierContact", "contacts"),
    ("AccountContact", "contacts"),
    ("Item", "items"),
    ("Project", "projects"),
    ("Opportunity", "opportunities"),
    ("Subscription", "subscriptions"),
    ("Creator", "user"),
    ("Modifier", "user"),
    ("Employee", "user"),
    ("Salesperson", "user"),
    ("SalesPerson", "user"),
    ("AccountManager", "user"),
    ("Manager", "user"),
    ("Owner", "user"),
    ("Approver", "user"),
    ("PurchaseAgent", "user"),
)
