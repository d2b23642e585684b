"""Production's silent drops on write (gotchas 1–6): what Exact does to a body without saying so."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from sandbox.entities import Entity, by_path
from sandbox.records import WriteError

__all__ = [
    "READ_ONLY",
    "Records",
    "apply_header",
    "apply_line",
    "default_vat_code",
    "derived",
    "guid_of",
    "parse_write_date",
]

# Filled by Exact on read; a value sent for these is ignored.
READ_ONLY = frozenset(
    {
        "ID",
        "Division",
        "Created",
        "Modified",
        "Timestamp",
        "ItemCode",
        "SupplierCode",
        "SupplierName",
        "InvoiceToName",
        "FullName",
        "TypeDescription",
        "InvoiceID",
        "PurchaseOrderID",
        "AccountName",
        "Creator",
        "CreatorFullName",
        "Modifier",
        "ModifierFullName",
    }
)
_MS_DATE_SUFFIXES = ("Date", "Time")
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


class Records(Protocol):
    """The store's reads that the write rules need (a protocol, so the store can import the rules)."""

    def table(self, division: int, path: str) -> dict[str, dict[str, Any]]: ...

    def rows(self, division: int, entity: Entity) -> list[dict[str, Any]]: ...

    def division(self, code: int) -> dict[str, Any] | None: ...


def derived(old: dict[str, Any]) -> dict[str, Any]:
    """What a replace keeps of the old row: the fields Exact fills itself (a write rule may fill them again)."""
    return {k: v for k, v in old.items() if k in READ_ONLY or k.startswith("_")}


def default_vat_code(rows: list[dict[str, Any]]) -> str | None:
    """The division's default VAT code: the seed marks it with the hidden `_default` (Exact keeps it in settings)."""
    return next((v["Code"] for v in rows if v.get("_default")), None)


def parse_write_date(value: Any) -> datetime | None:
    """Writes take ISO 8601 or `/Date(ms)/`; a zone-less ISO value is taken as UTC."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value)
    if m := _MS_DATE.match(text):
        return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def guid_of(value: Any) -> str | None:
    """The canonical form of a GUID, or None for anything else."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _find(store: Records, division: int, path: str, key: Any) -> dict[str, Any] | None:
    guid = guid_of(key) if key is not None else None
    return store.table(division, path).get(guid) if guid else None


def _dates(row: dict[str, Any]) -> None:
    for name, value in row.items():
        if isinstance(value, str) and (name.endswith(_MS_DATE_SUFFIXES) or name == "Date"):
            try:
                row[name] = parse_write_date(value)
            except ValueError as exc:
                raise WriteError(f"{name}: not a date: {value}") from exc


def apply_header(store: Records, division: int, entity: Entity, row: dict[str, Any]) -> dict[str, Any]:
    _dates(row)
    if "Currency" in entity.data_fields:
        codes = {c["Code"] for c in store.rows(division, _entity("general/Currencies"))}
        if row.get("Currency") not in codes:
            # Gotcha 3: an unsupported currency becomes the division's, with no conversion.
            row["Currency"] = store.division(division)["Currency"]  # type: ignore[index]
    if entity.path == "crm/Accounts" and row.get("Code") is not None:
        row["Code"] = str(row["Code"]).strip().rjust(18)
    if entity.path == "crm/Contacts":
        parts = (row.get("FirstName"), row.get("MiddleName"), row.get("LastName"))
        row["FullName"] = " ".join(p for p in parts if p) or None
    if entity.path == "purchaseorder/PurchaseOrders":
        supplier = _find(store, division, "crm/Accounts", row.get("Supplier"))
        row["Supplier"] = supplier["ID"] if supplier else None
        row["SupplierCode"] = supplier["Code"] if supplier else None
        row["SupplierName"] = supplier["Name"] if supplier else None
    if entity.path == "project/TimeTransactions":
        _link_item(store, division, row, row.get("Item"), entity.data_fields)
        account = _find(store, division, "crm/Accounts", row.get("Account"))
        row["Account"] = account["ID"] if account else None
        row["AccountName"] = account["Name"] if account else None
        _link_hours(store, division, row)
    if entity.path == "salesinvoice/SalesInvoices":
        customer = _find(store, division, "crm/Accounts", row.get("InvoiceTo"))
        row["InvoiceTo"] = customer["ID"] if customer else None
        row["InvoiceToName"] = customer["Name"] if customer else None
        if _find(store, division, "crm/Accounts", row.get("OrderedBy")) is None:
            row["OrderedBy"] = row["InvoiceTo"]
    return row


def apply_line(store: Records, division: int, entity: Entity, row: dict[str, Any]) -> dict[str, Any]:
    """`row`: the writable fields of a line body."""
    _dates(row)
    fields = entity.data_fields
    if "GLAccount" in fields:
        gl = _find(store, division, "financial/GLAccounts", row.get("GLAccount"))
        # Gotcha 1: a GL account of another division is written as null, and the answer is still 201.
        row["GLAccount"] = gl["ID"] if gl else None
        for companion, source in (("GLAccountCode", "Code"), ("GLAccountDescription", "Description")):
            if companion in fields:
                row[companion] = gl[source] if gl else None
    if "VATCode" in fields:
        vat_codes = store.rows(division, _entity("vat/VATCodes"))
        if row.get("VATCode") not in {v["Code"] for v in vat_codes}:
            # Gotcha 2: an unknown VAT code silently becomes the division's default.
            row["VATCode"] = default_vat_code(vat_codes)
    if "Item" in fields:
        _link_item(store, division, row, row.get("Item"), fields)
    # Gotcha 5: a purchase-order line keeps `Quantity` as `QuantityOrdered` (entities.FIELD_REPORTS).
    quantity, price = row.get("Quantity", row.get("QuantityOrdered")), row.get("UnitPrice")
    for amount in ("AmountDC", "Amount"):
        if amount in fields and isinstance(quantity, int | float) and isinstance(price, int | float):
            row[amount] = round(quantity * price, 2)
    if "AmountDC" in fields and "AmountFC" in fields:
        # One currency in the sandbox: an amount given in one of the two is the other too.
        row["AmountDC"] = row["AmountFC"] if row.get("AmountDC") is None else row["AmountDC"]
        row["AmountFC"] = row["AmountDC"] if row.get("AmountFC") is None else row["AmountFC"]
    return row


def _link_hours(store: Records, division: int, row: dict[str, Any]) -> None:
    """The names Exact reads back with an hour's project and WBS activity (the GUIDs stay as written)."""
    if project := _find(store, division, "project/Projects", row.get("Project")):
        row["ProjectCode"], row["ProjectDescription"] = project["Code"], project["Description"]
    if activity := _find(store, division, "project/WBSActivities", row.get("Activity")):
        row["ActivityDescription"] = activity["Description"]


def _link_item(store: Records, division: int, row: dict[str, Any], item_ref: Any, fields: tuple[str, ...]) -> None:
    if item_ref is not None and guid_of(item_ref) is None:
        # Gotcha 6: Item takes a GUID; a code is refused.
        raise WriteError(f"Item: '{item_ref}' is not a valid GUID")
    # An Item of another division is a phantom link: written as null, answered 201.
    item = _find(store, division, "logistics/Items", item_ref)
    row["Item"] = item["ID"] if item else None
    for companion, source in (("ItemCode", "Code"), ("ItemDescription", "Description")):
        if companion in fields:
            row[companion] = item[source] if item else None


def _entity(path: str) -> Entity:
    entity = by_path(path)
    assert entity is not None
    return entity
