"""What `record` reads of each resource: within the reference, filtered where Exact demands it, one GET per path."""

from __future__ import annotations

from exact import CATALOGUE
from schema import calls_needed, expected, reads


def test_every_path_the_catalogue_names_is_read_once() -> None:
    paths = set()
    for entity in CATALOGUE.entities.values():
        paths |= {p for p in (entity.path, entity.sync_path, entity.lines.path if entity.lines else None) if p}
    paths |= {spec.path for spec in CATALOGUE.references.values()}  # a reference kind may read a path no topic has
    assert set(reads(CATALOGUE)) == paths
    assert calls_needed(CATALOGUE) == len(paths)


def test_every_selected_field_is_one_the_reference_lists_for_that_resource() -> None:
    for path, read in reads(CATALOGUE).items():
        known = CATALOGUE.reference.fields(path)
        assert set(read.select) <= set(known), path
        assert set(read.writes) <= set(read.select), path


def test_sync_paths_read_from_timestamp_1_and_service_paths_by_modified() -> None:
    found = reads(CATALOGUE)
    assert found["sync/CRM/Accounts"].filter == "Timestamp gt 1L"
    # The sandbox's (and Exact's) mandatory filtering: crm/Accounts and logistics/Items refuse a read without one.
    for path in ("crm/Accounts", "logistics/Items"):
        assert found[path].filter == "Modified ge datetime'1900-01-01T00:00:00'"


def test_a_read_selects_what_the_lane_reads_and_what_writes_and_references_use() -> None:
    found = reads(CATALOGUE)
    accounts = CATALOGUE.require("Accounts")
    assert set(accounts.select()) <= set(found["sync/CRM/Accounts"].select)
    assert accounts.write is not None
    assert accounts.write.fields <= set(found["crm/Accounts"].writes)
    # Gotcha 5: purchase-order lines are written as Quantity and read as QuantityOrdered: the read name is guarded.
    assert "QuantityOrdered" in found["purchaseorder/PurchaseOrderLines"].writes
    assert {"Code"} <= set(found["general/Currencies"].select)


def test_the_catalogue_expects_line_rows_of_line_row_sync_resources_and_lines() -> None:
    resources = expected(CATALOGUE).resources
    invoices = resources["sync/SalesInvoice/SalesInvoices"]
    assert (invoices.row_shape, invoices.header_key) == ("line_rows", "InvoiceID")
    assert resources["salesinvoice/SalesInvoices"].row_shape == "flat"
    assert resources["sync/CRM/Accounts"].fields["Timestamp"].type == "number"
    assert resources["generaljournalentry/GeneralJournalEntries"].fields["GeneralJournalEntryLines"].type == "array"
    assert all(f.date is None for r in resources.values() for f in r.fields.values())
