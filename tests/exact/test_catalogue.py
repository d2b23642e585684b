"""The entity catalogue against the reference: every path and field the project reads or writes exists there."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import pytest

from exact import CATALOGUE, UnsupportedTopic
from exact._catalogue import CatalogueError, load
from tests.exact.catalogue_check import catalogue_problems, literal_paths

ROOT = Path(__file__).resolve().parents[2]
TOML = (files("exact") / "catalogue.toml").read_text("utf-8")
REFERENCE = (files("exact") / "reference.json").read_text("utf-8")


def test_the_catalogue_agrees_with_the_reference() -> None:
    assert catalogue_problems(CATALOGUE) == []


def test_every_exact_path_named_in_the_code_is_in_the_reference() -> None:
    resources = CATALOGUE.reference.resources
    unknown = [(where, path) for where, path in literal_paths(ROOT) if path not in resources]
    assert unknown == []


def test_the_scan_finds_the_paths_the_code_names() -> None:
    found = {path for _, path in literal_paths(ROOT)}
    assert {"sync/Deleted", "current/Me", "webhooks/WebhookSubscriptions"} <= found


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        ('    "Code", "Name", "Email"', '    "Code", "Naam", "Email"', "crm/Accounts has no field Naam"),
        ("deleted = 13", "deleted = 12", "EntityType 12 is 'SalesOrders', not SalesInvoices"),
        ('key = "InvoiceID"', 'key = "ID"', "the key of salesinvoice/SalesInvoices is InvoiceID"),
        (
            'shape = "line_rows"\nline_path = "purchaseorder',
            'shape = "flat"\nline_path = "purchaseorder',
            "sync/PurchaseOrder/PurchaseOrders rows are grouped by PurchaseOrderID",
        ),
        (
            'read_only = ["AccountName", "ItemDescription",',
            'read_only = ["AccountName", "ItemCode",',
            "project/TimeTransactions has no field ItemCode",
        ),
        ("confirmed = false\n", "", "topic Projects: webhook=True, confirmed=True"),
        (
            '"purchaseorder/PurchaseOrderLines" = { Quantity =',
            '"purchaseorder/PurchaseOrderLines" = { Qty =',
            "field report purchaseorder/PurchaseOrderLines: the reference has no Qty",
        ),
        (
            'webhook = false\npath = "vat/VATCodes"',
            'webhook = true\npath = "vat/VATCodes"',
            "topic VATCodes: webhook=True",
        ),
    ],
)
def test_a_catalogue_that_disagrees_is_caught(before: str, after: str, problem: str) -> None:
    assert TOML.count(before) == 1
    problems = catalogue_problems(load(TOML.replace(before, after), REFERENCE))
    assert problems, "the mutation went unnoticed"
    assert any(problem in p for p in problems), problems


# Issue 18: writes with no topic, check fields, natural keys and markers, the new reference kinds and lookups.
WRITE_MUTATIONS = [
    pytest.param(
        'journal = "Journal"\ndate = "EntryDate"\ncustomer',
        'journal = "Jornal"\ndate = "EntryDate"\ncustomer',
        "write SalesEntry: check field journal: salesentry/SalesEntries has no field Jornal",
        id="check-field-typo",
    ),
    pytest.param(
        'order_line = "PurchaseOrderLineID"',
        'order_line = "PurchaseOrderLine"',
        "write GoodsReceipt: check field order_line: purchaseorder/GoodsReceiptLines has no field PurchaseOrderLine",
        id="line-check-field-typo",
    ),
    pytest.param(
        'entry_number = "EntryNumber"\nline_date',
        'entry_number = "Status"\nline_date',
        "write GeneralJournalEntry: check field entry_number: Status is not a field of the write",
        id="check-field-not-written",
    ),
    pytest.param(
        '"Journal", "Customer", "EntryDate"',
        '"Journal", "Klant", "EntryDate"',
        "write SalesEntry: salesentry/SalesEntries has no field Klant",
        id="write-only-field-typo",
    ),
    pytest.param(
        'key = "StockCountID"',
        'key = "ID"',
        "write StockCount: the key of inventory/StockCounts is StockCountID",
        id="write-only-key",
    ),
    pytest.param(
        'path = "payroll/Employees"',
        'path = "payroll/Employee"',
        "reference employee: payroll/Employee is not in the reference",
        id="reference-path",
    ),
    pytest.param(
        'path = "inventory/Warehouses"\nmatch = "Code"\nwrites = "ID"',
        'path = "inventory/Warehouses"\nmatch = "Code"\nwrites = "Code"',
        "write StockCount: inventory/StockCounts.Warehouse takes a GUID, but warehouse writes Code",
        id="guid-written-as-code",
    ),
    pytest.param(
        'path = "financial/Journals"\nmatch = "Code"\nwrites = "Code"',
        'path = "financial/Journals"\nmatch = "Code"\nwrites = "ID"',
        "write GeneralJournalEntry: generaljournalentry/GeneralJournalEntries.JournalCode takes a code, but journal "
        "writes ID",
        id="code-written-as-guid",
    ),
    pytest.param(
        'done = "ReceivedQuantity"',
        'done = "QuantityReceived"',
        "lookup purchase_order_line: purchaseorder/PurchaseOrderLines has no field QuantityReceived",
        id="lookup-field-typo",
    ),
    pytest.param(
        'fields = { code = "Code", type = "Type", allow_vat = "AllowVAT"',
        'fields = { code = "Code", type = "Type", vat = "AllowVAT"',
        "lookup journal: no field for role allow_vat",
        id="lookup-role",
    ),
    pytest.param(
        'transforms = { Code = "account_code" }\nnatural_keys = ["VATNumber"',
        'transforms = { Code = "account_code" }\nnatural_keys = ["VATNummer"',
        "write Account: natural key VATNummer is not a field of the write",
        id="natural-key",
    ),
    pytest.param(
        'marker = "Notes"',
        'marker = "HourStatus"',
        "write TimeTransaction: marker HourStatus is no free-text field of the write (int)",
        id="marker-not-text",
    ),
]


@pytest.mark.parametrize(("before", "after", "problem"), WRITE_MUTATIONS)
def test_a_write_spec_that_disagrees_is_caught(before: str, after: str, problem: str) -> None:
    assert TOML.count(before) == 1
    problems = catalogue_problems(load(TOML.replace(before, after), REFERENCE))
    assert problem in problems, problems


@pytest.mark.parametrize(
    ("before", "after", "error"),
    [
        pytest.param('checks = ["supplier"]', 'checks = ["suplier"]', "PurchaseOrder: no check 'suplier'", id="name"),
        pytest.param(
            'checks = ["supplier"]', 'checks = ["customer"]', "check customer needs check_fields customer", id="roles"
        ),
        pytest.param(
            'supplier = ["Supplier"]\n\n[entity.write.lines]',
            'vendor = ["Supplier"]\n\n[entity.write.lines]',
            "PurchaseOrder: unknown check_fields role vendor",
            id="role",
        ),
    ],
)
def test_a_check_the_catalogue_cannot_run_stops_the_load(before: str, after: str, error: str) -> None:
    assert TOML.count(before) == 1
    with pytest.raises(CatalogueError, match=re.escape(error)):
        load(TOML.replace(before, after), REFERENCE)


def test_every_write_of_issue_18_is_in_the_catalogue() -> None:
    assert set(CATALOGUE.writes) == {
        "Account",
        "SalesInvoice",
        "PurchaseOrder",
        "TimeTransaction",
        "GeneralJournalEntry",
        "SalesEntry",
        "PurchaseEntry",
        "SalesOrder",
        "GoodsDelivery",
        "GoodsReceipt",
        "PurchaseInvoice",
        "StockCount",
    }
    assert set(CATALOGUE.standalone) == {"SalesEntry", "GoodsReceipt", "PurchaseInvoice", "StockCount"}
    assert not {"SalesEntries", "GoodsReceipts"} & set(CATALOGUE.topics())  # no lane reads them
    entry = CATALOGUE.writes["GeneralJournalEntry"]
    assert entry.checks[:4] == ("journal_required", "financial_period", "period_open", "balanced")
    assert entry.lines is not None
    assert entry.lines.dates == {"Date"}


def test_guid_only_kinds_and_codes() -> None:
    refs = CATALOGUE.references
    assert {k for k, r in refs.items() if r.guid_only} == {"activity", "sales_order_line", "purchase_order_line"}
    assert {k for k, r in refs.items() if not r.guid} == {
        "currency",
        "vat_code",
        "journal",
        "payment_condition",
        "cost_center",
        "cost_unit",
    }


def test_a_path_the_reference_lacks_stops_the_load() -> None:
    with pytest.raises(CatalogueError, match="sync/CRM/Contact is not in exact/reference.json"):
        load(TOML.replace('sync_path = "sync/CRM/Contacts"', 'sync_path = "sync/CRM/Contact"'), REFERENCE)


def test_a_field_exact_retired_is_caught() -> None:
    reference = json.loads(REFERENCE)
    del reference["resources"]["sync/CRM/Accounts"]["fields"]["Email"]
    del reference["resources"]["crm/Accounts"]["fields"]["Email"]
    problems = catalogue_problems(load(TOML, json.dumps(reference)))
    assert "write Account: crm/Accounts has no field Email" in problems


def test_every_confirmed_topic_is_supported() -> None:
    assert set(CATALOGUE.reference.topics_seen) <= set(CATALOGUE.topics(webhook=True))
    assert [e.topic for e in CATALOGUE.entities.values() if not e.confirmed and e.webhook] == ["Projects"]
    assert set(CATALOGUE.topics(webhook=False)) == {"GLAccounts", "VATCodes", "Currencies"}


def test_documents_with_lines_split_header_and_line_fields() -> None:
    invoice = CATALOGUE.require("SalesInvoices")
    assert invoice.lines is not None
    assert {"InvoiceID", "InvoiceNumber", "InvoiceTo", "Modified"} <= set(invoice.fields)
    assert {"ID", "LineNumber", "Item", "Quantity", "AmountDC", "Timestamp"} <= set(invoice.lines.fields)
    assert not {"Item", "Quantity"} & set(invoice.fields)


def test_narrowing_keeps_keys_and_versions_and_refuses_unknown_fields() -> None:
    invoice = CATALOGUE.require("SalesInvoices")
    assert set(invoice.select(["InvoiceNumber", "Quantity"])) == {
        "InvoiceID",
        "InvoiceNumber",
        "Division",
        "Modified",
        "ID",
        "LineNumber",
        "Quantity",
        "Timestamp",
    }
    with pytest.raises(ValueError, match="no such field Nonsense"):
        invoice.check_narrow(["Nonsense"])


def test_an_unsupported_topic_names_the_supported_ones() -> None:
    with pytest.raises(UnsupportedTopic, match="supported: Accounts, Contacts"):
        CATALOGUE.require("Nonsense")
    assert CATALOGUE.canonical("salesinvoices") == "SalesInvoices"
