"""Seed data postings name (issue 18): employees, cost centers and units, a warehouse, two WBS activities per
project, order lines with open quantities, and a few documents of each posting resource.

The open lines: the sales order with YourRef `OPEN-SO-1` has one line, Quantity 10 and QuantityDelivered 4; the
purchase order `OPEN-PO-1` one line, Quantity (read as QuantityOrdered) 10 and ReceivedQuantity 3, received by the
seeded goods receipt. Added after every older seed, so their rng draws stay as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sandbox import seed_docs, values
from sandbox.entities import (
    COST_CENTERS,
    COST_UNITS,
    EMPLOYEES,
    GOODS_RECEIPTS,
    PURCHASE_INVOICES,
    PURCHASE_ORDERS,
    SALES_ENTRIES,
    SALES_ORDERS,
    STOCK_COUNTS,
    WAREHOUSES,
    WBS_ACTIVITIES,
    Entity,
    line_of,
)
from sandbox.seed_pool import Pool, Row

__all__ = ["OPEN_PURCHASE_ORDER", "OPEN_SALES_ORDER", "seed"]

OPEN_SALES_ORDER, OPEN_PURCHASE_ORDER = "OPEN-SO-1", "OPEN-PO-1"
_EMPLOYEES = (("1", "Jan", "", "Jansen"), ("2", "Piet", "de", "Vries"))
_STAGES = ("Voorbereiding", "Uitvoering")


def seed(pool: Pool) -> None:
    _employees(pool)
    for entity, codes, noun in (
        (COST_CENTERS, ("100", "200"), "Kostenplaats"),
        (COST_UNITS, ("A", "B"), "Kostendrager"),
    ):
        for n, code in enumerate(codes, start=1):
            pool.add(entity, n, Code=code, Description=f"{noun} {code}")
    pool.add(WAREHOUSES, 1, kind="warehouses", Code="1", Description="Hoofdmagazijn", Main=1, UseStorageLocations=0)
    _activities(pool)
    _open_orders(pool)
    _entries(pool)


def _employees(pool: Pool) -> None:
    for n, (code, first, middle, last) in enumerate(_EMPLOYEES, start=1):
        full = " ".join(p for p in (first, middle, last) if p)
        fields = {"Code": code, "HID": n, "EmployeeHID": n, "FirstName": first, "MiddleName": middle}
        fields.update(LastName=last, FullName=full, IsActive=True)
        pool.add(EMPLOYEES, n, kind="employees", **fields)


def _activities(pool: Pool) -> None:
    """Two WBS activities per project; the seeded hours name one of their project's and a seeded employee."""
    by_project: dict[str, list[Row]] = {}
    for n, project in enumerate(pool.kind("projects"), start=1):
        for m, stage in enumerate(_STAGES, start=1):
            fields = {"Description": stage, "SequenceNumber": m, "BlockEntry": False, "Completed": False}
            row = pool.add(WBS_ACTIVITIES, n * 2 + m, kind="activities", **fields)
            values.link(row, "Project", project)
            by_project.setdefault(project["ID"], []).append(row)
    employees = pool.kind("employees")
    for n, hours in enumerate(pool.kind("time_transactions")):
        activity = by_project[hours["Project"]][n % 2]
        hours["Activity"], hours["ActivityDescription"] = activity["ID"], activity["Description"]
        hours["Employee"] = employees[n % len(employees)]["ID"]


def _open_line(extra: dict[str, Any]) -> seed_docs.LineFields:
    def fields(pool: Pool, n: int, number: int) -> dict[str, Any]:
        line = seed_docs.trade_line(pool, n, number)
        line.update(extra, Quantity=10.0)
        amount = round(10.0 * line["UnitPrice"], 2)
        vat = round(amount * 0.21, 2)
        line.update(AmountDC=amount, AmountFC=amount, VATAmountDC=vat, VATAmountFC=vat, VATAmount=vat)
        return line

    return fields


def _open_orders(pool: Pool) -> None:
    pool.kind("open_orders").append(
        seed_docs.trade(
            pool,
            SALES_ORDERS,
            6,
            lines=1,
            line_fields=_open_line({"QuantityDelivered": 4.0, "QuantityInvoiced": 0.0}),
            OrderNumber=28006,
            YourRef=OPEN_SALES_ORDER,
            Description="Open verkooporder",
        )
    )
    order = seed_docs.trade(
        pool,
        PURCHASE_ORDERS,
        6,
        lines=1,
        line_fields=_open_line({"ReceivedQuantity": 3.0, "InvoicedQuantity": 0.0}),
        OrderNumber=27006,
        OrderStatus=10,
        YourRef=OPEN_PURCHASE_ORDER,
        Description="Open inkooporder",
    )
    line = _lines(pool, PURCHASE_ORDERS, order)[0]
    receipt = {"ReceiptNumber": 33001, "EntryNumber": 33001, "YourRef": f"{OPEN_PURCHASE_ORDER}-R1"}
    receipt.update(Supplier=order["Supplier"], Description="Ontvangst open inkooporder")

    def received(_pool: Pool, _n: int, _number: int) -> dict[str, Any]:
        fields = {"PurchaseOrderID": order["PurchaseOrderID"], "PurchaseOrderLineID": line["ID"], "Item": line["Item"]}
        fields.update(PurchaseOrderNumber=order["OrderNumber"], QuantityOrdered=10.0, QuantityReceived=3.0)
        return fields

    goods = seed_docs.document(pool, GOODS_RECEIPTS, 1, 1, received, **receipt)
    _link_warehouse(pool, goods)
    goods["SupplierCode"], goods["SupplierName"] = order["SupplierCode"], order["SupplierName"]


def _lines(pool: Pool, header: Entity, document: Row) -> list[Row]:
    table = pool.store.table(pool.division, line_of(header).path)
    return [x for x in table.values() if x.get(header.line_link) == document[header.key]]


def _link_warehouse(pool: Pool, row: Row) -> None:
    values.link(row, "Warehouse", pool.kind("warehouses")[0])


def _entry_line(gl_code: str, vat: str) -> seed_docs.LineFields:
    def fields(pool: Pool, n: int, number: int) -> dict[str, Any]:
        amount = round(120.0 * n + 15.5 * number, 2)
        line: dict[str, Any] = {"AmountDC": amount, "AmountFC": amount, "Description": f"Regel {n}.{number}"}
        line.update(VATBaseAmountDC=amount, VATBaseAmountFC=amount, VATPercentage=0.21, VATCode=vat, Quantity=1.0)
        line.update(VATAmountDC=round(amount * 0.21, 2), VATAmountFC=round(amount * 0.21, 2))
        values.link(line, "GLAccount", pool.gl[gl_code])
        line["GLAccountCode"], line["GLAccountDescription"] = gl_code, pool.gl[gl_code]["Description"]
        return line

    return fields


def _invoice_line(pool: Pool, n: int, number: int) -> dict[str, Any]:
    line = seed_docs.trade_line(pool, n, number)
    line["Amount"], line["VATCode"] = line["AmountDC"], "2"
    return line


def _count_line(pool: Pool, n: int, number: int) -> dict[str, Any]:
    item = pool.pick("items", n + number) or {}
    fields = {"Item": item.get("ID"), "ItemCode": item.get("Code"), "ItemDescription": item.get("Description")}
    fields.update(QuantityInStock=10.0, QuantityNew=float(8 + number), QuantityDifference=float(number - 2))
    return fields


def _entries(pool: Pool) -> None:
    vat = "2"
    for n in range(1, 3):
        date = datetime(2026, 3, n * 5, tzinfo=UTC)
        header = {"Journal": "70", "JournalDescription": "Verkoopboek", "EntryNumber": 32000 + n, "EntryDate": date}
        header.update(Type=20, TypeDescription="Verkoopboeking", ReportingYear=2026, ReportingPeriod=3)
        header.update(YourRef=f"SE-2026-{n:03d}", PaymentCondition="30", PaymentConditionDescription="30 dagen")
        entry = seed_docs.document(pool, SALES_ENTRIES, n, 2, _entry_line("8000", vat), **header)
        customer = pool.pick("customers", n) or {}
        entry["Customer"], entry["CustomerName"] = customer.get("ID"), customer.get("Name")
    for n in range(1, 3):
        date = datetime(2026, 4, n * 5, tzinfo=UTC)
        header = {"Journal": "60", "EntryNumber": 34000 + n, "InvoiceDate": date, "FinancialYear": 2026}
        header.update(FinancialPeriod=4, Type=30, YourRef=f"PI-2026-{n:03d}", PaymentCondition="30", Currency="EUR")
        invoice = seed_docs.document(pool, PURCHASE_INVOICES, n, 2, _invoice_line, **header)
        invoice["Supplier"] = (pool.pick("suppliers", n) or {}).get("ID")
        _link_warehouse(pool, invoice)
    header = {"StockCountNumber": 35001, "EntryNumber": 35001, "Description": "Telling magazijn", "Status": 12}
    count = seed_docs.document(pool, STOCK_COUNTS, 1, 2, _count_line, **header)
    _link_warehouse(pool, count)
