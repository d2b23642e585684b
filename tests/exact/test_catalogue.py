"""The entity catalogue against the reference: every path and field the project reads or writes exists there."""

from __future__ import annotations

import json
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
        ('fields = ["Code", "Name", "Email"', 'fields = ["Code", "Naam", "Email"', "crm/Accounts has no field Naam"),
        ("deleted = 13", "deleted = 12", "EntityType 12 is 'SalesOrders', not SalesInvoices"),
        ('key = "InvoiceID"', 'key = "ID"', "the key of salesinvoice/SalesInvoices is InvoiceID"),
        (
            'shape = "line_rows"\nline_path = "purchaseorder',
            'shape = "flat"\nline_path = "purchaseorder',
            "sync/PurchaseOrder/PurchaseOrders rows are grouped by PurchaseOrderID",
        ),
        (
            'read_only = ["AccountName", "ItemDescription"]',
            'read_only = ["AccountName", "ItemCode"]',
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
