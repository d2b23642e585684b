"""Seed documents with lines: invoices, orders, quotations, deliveries, financial transactions and entries.

Lines carry their document's key and a `LineNumber`; trade lines are priced from the item (AmountDC = Quantity *
UnitPrice) and the header's totals are the sums of its lines; the lines of a financial entry balance to zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.entities import (
    BANK_ENTRIES,
    CASH_ENTRIES,
    DOCUMENT_SHARED,
    GENERAL_JOURNAL_ENTRIES,
    GOODS_DELIVERIES,
    PURCHASE_ENTRIES,
    PURCHASE_ORDERS,
    QUOTATIONS,
    SALES_INVOICES,
    SALES_ORDERS,
    TRANSACTIONS,
    Entity,
    line_of,
)
from sandbox.seed_pool import Pool, Row

__all__ = ["LineFields", "document", "seed", "seed_archived", "trade", "trade_line"]

LineFields = Callable[[Pool, int, int], dict[str, Any]]
_TOTALS = ("AmountDC", "AmountFC", "VATAmountDC", "VATAmountFC", "VATAmount", "Amount")
# Identity fields a line repeats from its document (the same entry, journal, period and date).
_OPEN, _DONE = (20, "Open"), (50, "Verwerkt")
# (status, description) pairs per document, from Exact's ranges.
_STATUS: dict[str, tuple[tuple[int, str], ...]] = {
    SALES_INVOICES.path: (_OPEN, _DONE, (10, "Concept")),
    SALES_ORDERS.path: ((12, "Open"), (20, "Gedeeltelijk"), (21, "Volledig")),
    QUOTATIONS.path: ((20, "Concept"), (25, "Open"), (50, "Geaccepteerd")),
}
_NOUN = {
    SALES_INVOICES.path: "Factuur",
    PURCHASE_ORDERS.path: "Inkooporder",
    SALES_ORDERS.path: "Verkooporder",
    QUOTATIONS.path: "Offerte",
}


def seed(pool: Pool) -> None:
    for n in range(1, 7):
        trade(pool, SALES_INVOICES, n, Type=8020, TypeDescription="Verkoopfactuur", InvoiceNumber=26000 + n)
    for n in range(1, 6):
        trade(pool, PURCHASE_ORDERS, n, OrderStatus=(10, 20, 30)[n % 3], OrderNumber=27000 + n)
    for n in range(1, 6):
        trade(pool, SALES_ORDERS, n, OrderNumber=28000 + n)
    for n in range(1, 6):
        trade(pool, QUOTATIONS, n, QuotationNumber=29000 + n, VersionNumber=1)
    for n in range(1, 5):
        document(pool, GOODS_DELIVERIES, n, 2 + n % 3, _delivery_line, DeliveryNumber=30000 + n)
    journals = (
        (TRANSACTIONS, "70", "Verkoopboek", 6),
        (GENERAL_JOURNAL_ENTRIES, "90", "Memoriaal", 3),
        (BANK_ENTRIES, "20", "Bank", 3),
        (CASH_ENTRIES, "10", "Kas", 2),
    )
    for entity, journal, description, count in journals:
        for n in range(1, count + 1):
            fields = {"JournalCode": journal, "JournalDescription": description, "EntryNumber": 31000 + n}
            document(pool, entity, n, 2 + n % 3, _ledger_line, **fields, **_state(n))
    for n in range(1, 4):
        document(pool, PURCHASE_ENTRIES, n, 2 + n % 2, _purchase_line, Journal="60", Type=30, **_state(n))


def seed_archived(pool: Pool) -> None:
    """Division 303 as it always was: five one-line invoices and three one-line purchase orders."""
    for n in range(1, 6):
        trade(pool, SALES_INVOICES, n, lines=1, Description=f"Factuur {n}", InvoiceNumber=26000 + n)
    for n in range(1, 4):
        trade(pool, PURCHASE_ORDERS, n, lines=1, Description=f"Inkooporder {n}", OrderNumber=27000 + n)


def _state(n: int) -> dict[str, Any]:
    status, description = (_OPEN, _DONE)[n % 2]
    return {"Status": status, "StatusDescription": description}


def trade(
    pool: Pool, header: Entity, n: int, *, lines: int = 0, line_fields: LineFields | None = None, **fields: Any
) -> Row:
    if header.path in _STATUS:
        states = _STATUS[header.path]
        fields = {"Status": states[n % len(states)][0], "StatusDescription": states[n % len(states)][1], **fields}
    fields.setdefault("Description", f"{_NOUN[header.path]} {n}")
    return document(pool, header, n, lines or 2 + n % 3, line_fields or trade_line, Currency="EUR", **fields)


def document(pool: Pool, header: Entity, n: int, count: int, line_fields: LineFields, **fields: Any) -> Row:
    head = pool.new(header, n, **fields)
    line_entity = line_of(header)
    lines = []
    for number in range(1, count + 1):
        line = pool.new(line_entity, n * 7 + number, **line_fields(pool, n, number))
        for name in DOCUMENT_SHARED:
            if name in line and name in head:
                line[name] = head[name]
        line[header.line_link], line["LineNumber"] = head[header.key], number
        lines.append(line)
    if line_fields is _ledger_line:
        lines[-1]["AmountDC"] = lines[-1]["AmountFC"] = -round(sum(x["AmountDC"] for x in lines[:-1]), 2)
    for total in _TOTALS:
        if total in head and all(total in x for x in lines):
            head[total] = round(sum(x[total] for x in lines), 2)
    pool.store.insert(pool.division, header, head)
    for line in lines:
        pool.store.insert(pool.division, line_entity, line)
    return head


def trade_line(pool: Pool, n: int, number: int) -> dict[str, Any]:
    item = pool.pick("items", n * 3 + number) or {}
    quantity, price = float(number + n % 3), float(item.get("StandardSalesPrice") or 10.0)
    amount = round(quantity * price, 2)
    vat = round(amount * 0.21, 2)
    fields: dict[str, Any] = {"Quantity": quantity, "UnitPrice": price, "NetPrice": price, "Discount": 0.0}
    fields["VATPercentage"] = 0.21
    fields.update({"AmountDC": amount, "AmountFC": amount, "VATAmountDC": vat, "VATAmountFC": vat, "VATAmount": vat})
    fields.update({"Item": item.get("ID"), "ItemCode": item.get("Code"), "ItemDescription": item.get("Description")})
    fields["Description"] = item.get("Description")
    return fields


def _delivery_line(pool: Pool, n: int, number: int) -> dict[str, Any]:
    item = pool.pick("items", n * 5 + number) or {}
    quantity = float(number + 1)
    fields: dict[str, Any] = {
        "QuantityOrdered": quantity,
        "QuantityDelivered": quantity,
        "Description": item.get("Description"),
    }
    fields.update({"Item": item.get("ID"), "ItemCode": item.get("Code"), "ItemDescription": item.get("Description")})
    return fields


def _ledger_line(pool: Pool, n: int, number: int) -> dict[str, Any]:
    amount = round(100.0 * n + 12.5 * number, 2)
    gl = pool.gl["8000" if number % 2 else "1300"]
    fields: dict[str, Any] = {"AmountDC": amount, "AmountFC": amount, "Description": f"Boeking {n}.{number}"}
    fields.update({"GLAccount": gl["ID"], "GLAccountCode": gl["Code"], "GLAccountDescription": gl["Description"]})
    return fields


def _purchase_line(pool: Pool, n: int, number: int) -> dict[str, Any]:
    amount = round(80.0 * n + 9.95 * number, 2)
    vat = round(amount * 0.21, 2)
    gl = pool.gl["4000"]
    fields: dict[str, Any] = {
        "AmountDC": amount,
        "AmountFC": amount,
        "VATAmountDC": vat,
        "VATAmountFC": vat,
        "VATPercentage": 0.21,
    }
    fields.update({"GLAccount": gl["ID"], "GLAccountCode": gl["Code"], "GLAccountDescription": gl["Description"]})
    fields.update({"VATBaseAmountDC": amount, "VATBaseAmountFC": amount, "Quantity": 1.0})
    return fields
