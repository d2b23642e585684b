"""Every writable entity posted through the Writer with its pre-flight checks: it lands and reads back field by
field, line by line; a journal entry that does not balance is stopped first, naming the difference."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from exact import CATALOGUE, SPECS, ExactClient, Preflight, PreflightFailed, References, Writer, guid_literal
from tests.conftest import ServerThread
from tests.exact.test_preflight import entry_lines, first, gje_lines, open_line, purchase_entry, sales_entry

Lines = list[dict[str, Any]] | None


@pytest.fixture
def writer(client: ExactClient) -> Writer:
    references = References(client)
    return Writer(client, references, Preflight(client, references))


@pytest.fixture
def client(connected: Any) -> ExactClient:
    return connected.client()


def _writes(sandbox: ServerThread) -> int:
    return int(httpx.get(f"{sandbox.url}/_sandbox/calls", params={"method": "write"}).json()["total"])


def test_a_balanced_journal_entry_posts_and_reads_back_field_by_field(writer: Writer) -> None:
    lines = gje_lines("2026-03-10", 250.0, -250.0)
    lines[0] |= {"Description": "Afschrijving", "CostCenter": "100", "CostUnit": "A"}
    result = writer.create(101, SPECS["GeneralJournalEntry"], {"JournalCode": "90"}, lines)
    assert result.verified["JournalCode"] == "90"
    assert result.lines is not None
    assert len(result.lines) == 2
    first, second = result.lines
    assert (first["AmountDC"], second["AmountDC"]) == (250.0, -250.0)
    assert (first["Description"], first["CostCenter"], first["CostUnit"]) == ("Afschrijving", "100", "A")
    assert first["GLAccount"] != second["GLAccount"]  # both GL codes resolved to the division's IDs
    assert str(first["Date"]).startswith("/Date(")  # a read date: compared as a moment, not as text


def test_an_unbalanced_journal_entry_names_the_difference_and_writes_nothing(
    writer: Writer, sandbox: ServerThread
) -> None:
    before = _writes(sandbox)
    with pytest.raises(PreflightFailed) as failed:
        writer.create(101, SPECS["GeneralJournalEntry"], {"JournalCode": "90"}, gje_lines("2026-03-10", 100, -87.5))
    assert failed.value.check == "balanced"
    assert "12.50" in failed.value.message
    assert _writes(sandbox) == before


@pytest.mark.parametrize(
    ("name", "fields", "lines"),
    [
        pytest.param("SalesEntry", sales_entry(YourRef="post-1"), entry_lines(), id="sales-entry"),
        pytest.param("SalesEntry", sales_entry(Type=21), entry_lines(), id="sales-credit-note"),
        pytest.param("PurchaseEntry", purchase_entry(Type=31), entry_lines(gl="7000"), id="purchase-credit-note"),
        pytest.param(
            "SalesInvoice",
            {"InvoiceTo": "1001", "InvoiceDate": "2026-03-10", "Journal": "70", "Type": 8021, "PaymentCondition": "14"},
            [{"Item": "ITEM-001", "Quantity": 1, "UnitPrice": 10.0}],
            id="sales-credit-invoice",
        ),
        pytest.param("SalesOrder", {"OrderedBy": "1001", "YourRef": "so-9"}, [{"Item": "ITEM-002", "Quantity": 3}]),
        pytest.param(
            "PurchaseInvoice",
            {"Supplier": "1003", "InvoiceDate": "2026-04-01", "Journal": "60"},
            [{"Item": "ITEM-001", "Quantity": 2, "UnitPrice": 4.5}],
            id="purchase-invoice",
        ),
        pytest.param("StockCount", {"Warehouse": "1"}, [{"Item": "ITEM-001", "QuantityNew": 3}], id="stock-count"),
        pytest.param(
            "Account",
            {
                "Name": "Nieuw BV",
                "ChamberOfCommerce": "55554444",
                "AddressLine1": "Markt 1",
                "Postcode": "6811 AA",
                "City": "Arnhem",
                "Country": "NL",
                "PaymentConditionSales": "14",
            },
            None,
            id="account",
        ),
        pytest.param(
            "TimeTransaction",
            {
                "Account": "1001",
                "Item": "ITEM-001",
                "Quantity": 2.5,
                "Date": "2026-03-10",
                "Employee": "1",
                "Project": "P101-001",
                "HourStatus": 1,
            },
            None,
            id="hours",
        ),
    ],
)
def test_each_entity_posts_and_reads_back_every_field(
    writer: Writer, name: str, fields: dict[str, Any], lines: Lines
) -> None:
    result = writer.create(101, SPECS[name], fields, lines)
    assert result.key
    # Every field written was read back equal (else WriteNotVerified): each is in `verified`, under its read name.
    assert set(fields) <= set(result.verified)
    if lines is not None:
        assert result.lines is not None
        assert len(result.lines) == len(lines)


def test_deliveries_and_receipts_book_against_their_order_lines(writer: Writer, client: ExactClient) -> None:
    _, sales_line = open_line(client, 101, "SalesOrder", "OPEN-SO-1")
    delivered = writer.create(
        101, SPECS["GoodsDelivery"], {}, [{"SalesOrderLineID": sales_line["ID"], "QuantityDelivered": 6}]
    )
    assert delivered.lines is not None
    assert delivered.lines[0]["QuantityDelivered"] == 6
    order, purchase_line = open_line(client, 101, "PurchaseOrder", "OPEN-PO-1")
    supplier = first(client, 101, CATALOGUE.references["account"].path, f"ID eq {guid_literal(order['Supplier'])}")
    receipt = {"Supplier": supplier["Code"]}
    with pytest.raises(PreflightFailed) as over:
        writer.create(
            101, SPECS["GoodsReceipt"], receipt, [{"PurchaseOrderLineID": purchase_line["ID"], "QuantityReceived": 8}]
        )
    assert (over.value.check, over.value.values["open"]) == ("open_quantity", 7)
    received = writer.create(
        101, SPECS["GoodsReceipt"], receipt, [{"PurchaseOrderLineID": purchase_line["ID"], "QuantityReceived": 7}]
    )
    assert received.lines is not None
    assert received.lines[0]["QuantityReceived"] == 7
