"""What Exact knows and fills in on a posting: a journal's entry numbers, the financial period of a date, the
journal's status in it, the names of what an entry links, and a delivery or receipt adding to its order lines.

Posting rules (`postings`) read the facts; the store calls `fill_header` on every write of a header and `deliver`
after a delivery or receipt is created.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandbox import documents, quirks
from sandbox.entities import (
    ACCOUNTS,
    BANK_ENTRIES,
    CASH_ENTRIES,
    FINANCIAL_PERIODS,
    GENERAL_JOURNAL_ENTRIES,
    GOODS_DELIVERIES,
    GOODS_RECEIPTS,
    JOURNAL_STATUS,
    JOURNALS,
    PURCHASE_ENTRIES,
    PURCHASE_INVOICES,
    PURCHASE_ORDER_LINES,
    PURCHASE_ORDERS,
    SALES_ENTRIES,
    SALES_INVOICES,
    SALES_ORDER_LINES,
    SALES_ORDERS,
    TRANSACTIONS,
    Entity,
)

__all__ = [
    "JOURNAL_FIELD",
    "account",
    "deliver",
    "entry_numbers",
    "fill_header",
    "journal",
    "period_of",
    "period_closed",
]

Row = dict[str, Any]
# Every resource whose records hold a journal's entry numbers, and the field naming the journal.
JOURNAL_FIELD = {
    GENERAL_JOURNAL_ENTRIES.path: "JournalCode",
    TRANSACTIONS.path: "JournalCode",
    BANK_ENTRIES.path: "JournalCode",
    CASH_ENTRIES.path: "JournalCode",
    SALES_ENTRIES.path: "Journal",
    PURCHASE_ENTRIES.path: "Journal",
    PURCHASE_INVOICES.path: "Journal",
    SALES_INVOICES.path: "Journal",
}
_NUMBERED = tuple(path for path in JOURNAL_FIELD if path != SALES_INVOICES.path)
# header path → (date field, year field, period field) Exact fills from the date
_PERIOD_FIELDS = {
    SALES_ENTRIES.path: ("EntryDate", "ReportingYear", "ReportingPeriod"),
    PURCHASE_ENTRIES.path: ("EntryDate", "ReportingYear", "ReportingPeriod"),
    PURCHASE_INVOICES.path: ("InvoiceDate", "FinancialYear", "FinancialPeriod"),
}
_DEFAULT_TYPE = {SALES_ENTRIES.path: 20, PURCHASE_ENTRIES.path: 30}
# header path → (account field, name field, payment condition field of the account)
_PARTY = {
    SALES_ENTRIES.path: ("Customer", "CustomerName", "PaymentConditionSales"),
    PURCHASE_ENTRIES.path: ("Supplier", "SupplierName", "PaymentConditionPurchase"),
    SALES_INVOICES.path: ("InvoiceTo", "InvoiceToName", "PaymentConditionSales"),
}


def journal(store: quirks.Records, division: int, code: Any) -> Row | None:
    if code in (None, ""):
        return None
    return next((j for j in store.rows(division, JOURNALS) if j["Code"] == str(code)), None)


def account(store: quirks.Records, division: int, key: Any) -> Row | None:
    guid = quirks.guid_of(key)
    return store.table(division, ACCOUNTS.path).get(guid) if guid else None


def period_of(store: quirks.Records, division: int, when: datetime) -> tuple[int, int] | None:
    """(year, period) of the financial period holding the date, or None: no financial year for it."""
    day = when.date()
    for p in store.rows(division, FINANCIAL_PERIODS):
        if p["StartDate"].date() <= day <= p["EndDate"].date():
            return int(p["FinYear"]), int(p["FinPeriod"])
    return None


def period_closed(store: quirks.Records, division: int, code: str, year: int, period: int) -> bool:
    rows = store.rows(division, JOURNAL_STATUS)
    return any(r["Journal"] == code and (r["Year"], r["Period"]) == (year, period) and r["Status"] == 1 for r in rows)


def entry_numbers(store: quirks.Records, division: int, code: str, *, but: str | None = None) -> set[int]:
    """The entry numbers the journal holds, the record keyed `but` left out (a PUT of itself)."""
    numbers: set[int] = set()
    for path in _NUMBERED:
        for key, row in store.table(division, path).items():
            if key != but and row.get(JOURNAL_FIELD[path]) == code and row.get("EntryNumber") is not None:
                numbers.add(int(row["EntryNumber"]))
    return numbers


def fill_header(store: quirks.Records, division: int, entity: Entity, row: Row, body: Row) -> None:
    """A posting's header as Exact stores it: the journal's name, an entry number when none was given, the
    period of its date, the linked account's name and payment condition, the default Type."""
    if (field := JOURNAL_FIELD.get(entity.path)) is None and entity.path not in _PARTY:
        return
    found = journal(store, division, row.get(field)) if field else None
    if found is not None and "JournalDescription" in entity.data_fields:
        row["JournalDescription"] = found["Description"]
    if entity.path in _NUMBERED and field and row.get(field) and row.get("EntryNumber") is None:
        row["EntryNumber"] = max(entry_numbers(store, division, str(row[field])), default=0) + 1
    if entity.path in _DEFAULT_TYPE and row.get("Type") is None:
        row["Type"] = _DEFAULT_TYPE[entity.path]
    if entity.path in _PERIOD_FIELDS:
        date_field, year_field, period_field = _PERIOD_FIELDS[entity.path]
        if isinstance(row.get(date_field), datetime) and (found_period := period_of(store, division, row[date_field])):
            row[year_field], row[period_field] = found_period
    if entity.path == GENERAL_JOURNAL_ENTRIES.path:
        _gje_period(store, division, row, body)
    if entity.path in _PARTY:
        _party(store, division, entity, row)


def _gje_period(store: quirks.Records, division: int, row: Row, body: Row) -> None:
    if row.get("FinancialYear") is not None:
        return
    dates = [
        quirks.parse_write_date(x.get("Date")) for x in body.get("GeneralJournalEntryLines") or [] if x.get("Date")
    ]
    found = period_of(store, division, dates[0]) if dates and dates[0] else None
    if found:
        row["FinancialYear"], row["FinancialPeriod"] = found


def _party(store: quirks.Records, division: int, entity: Entity, row: Row) -> None:
    field, name, condition = _PARTY[entity.path]
    party = account(store, division, row.get(field))
    if party is None:
        return
    if name in entity.data_fields:
        row[name] = party["Name"]
    if not row.get("PaymentCondition") and party.get(condition):
        row["PaymentCondition"] = party[condition]


def deliver(store: documents.Store, division: int, entity: Entity, row: Row) -> list[tuple[Entity, str]]:
    """A goods delivery (receipt) adds each line's quantity to its sales (purchase) order line, over-delivery
    included, as Exact does; returns the orders changed, for their webhooks."""
    if entity.path == GOODS_DELIVERIES.path:
        spec = (SALES_ORDERS, SALES_ORDER_LINES, "SalesOrderLineID", "QuantityDelivered", "QuantityDelivered")
    elif entity.path == GOODS_RECEIPTS.path:
        spec = (PURCHASE_ORDERS, PURCHASE_ORDER_LINES, "PurchaseOrderLineID", "QuantityReceived", "ReceivedQuantity")
    else:
        return []
    order_entity, line_entity, link, quantity, booked = spec
    changed: dict[str, Row] = {}
    for line in documents.lines_of(store, division, entity, row[entity.key]):
        target = store.table(division, line_entity.path).get(quirks.guid_of(line.get(link)) or "")
        if target is None:
            continue  # no order line of this division: nothing to add to
        target[booked] = round(float(target.get(booked) or 0) + float(line.get(quantity) or 0), 6)
        order = store.get(division, order_entity, target[order_entity.key])
        changed[order[order_entity.key]] = order
        _mark_line(line, target, order, order_entity)
    for order in changed.values():
        documents.touch(store, division, order_entity, order)
    return [(order_entity, key) for key in changed]


def _mark_line(line: Row, target: Row, order: Row, order_entity: Entity) -> None:
    """The delivery line names its order as Exact reads it back."""
    if order_entity is SALES_ORDERS:
        line.update(SalesOrderLineNumber=target.get("LineNumber"), SalesOrderNumber=order.get("OrderNumber"))
    else:
        line.update(PurchaseOrderID=order["PurchaseOrderID"], PurchaseOrderNumber=order.get("OrderNumber"))
    line["Item"] = line.get("Item") or target.get("Item")
