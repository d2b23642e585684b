"""Documents with lines: production's line rows on sync resources, Timestamps that move together, sync/Deleted."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sandbox.entities import (
    GENERAL_JOURNAL_ENTRIES,
    GOODS_DELIVERIES,
    PURCHASE_ORDERS,
    QUOTATIONS,
    SALES_INVOICES,
    SALES_ORDERS,
    TRANSACTIONS,
    Entity,
    line_of,
)
from tests.sandbox.conftest import Api, results
from tests.sandbox.test_webhooks import Callback, callback, content_bytes, subscribe, wait_idle

__all__ = ["callback"]  # the fixture, shared with test_webhooks

LINE_ROWS = (SALES_INVOICES, PURCHASE_ORDERS, SALES_ORDERS, QUOTATIONS, GOODS_DELIVERIES, TRANSACTIONS)
Row = dict[str, Any]


def walk(api: Api, entity: Entity, cursor: int = 0, division: int = 101) -> list[Row]:
    """Every row of the sync resource after `cursor`, following `__next`."""
    response = api.get(f"{division}/{entity.sync_path}", **{"$filter": f"Timestamp gt {cursor}L"})
    rows: list[Row] = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()["d"]
        rows += page["results"]
        if "__next" not in page:
            return rows
        response = api.get(page["__next"])


def records(http: httpx.Client, path: str, division: int = 101) -> list[Row]:
    return list(http.get(f"/_sandbox/records/{division}/{path}").json()["records"])


def lines_by_document(http: httpx.Client, header: Entity) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for line in records(http, line_of(header).path):
        grouped.setdefault(line[header.key], []).append(line)
    return grouped


def deleted(api: Api, entity_type: int) -> list[tuple[str, int]]:
    rows = results(api.get("101/sync/Deleted", **{"$filter": f"Timestamp gt 0L and EntityType eq {entity_type}"}))
    return [(r["EntityKey"], r["EntityType"]) for r in rows]


@pytest.mark.parametrize("header", LINE_ROWS, ids=lambda e: e.topic)
class TestLineRows:
    def test_one_row_per_line_with_the_header_key(self, header: Entity, api: Api, sandbox_http: httpx.Client) -> None:
        documents = {r[header.key]: r for r in records(sandbox_http, header.path)}
        lines = {line["ID"]: line for line in records(sandbox_http, line_of(header).path)}
        rows = walk(api, header)
        assert sorted(r["ID"] for r in rows) == sorted(lines)
        for row in rows:
            line = lines[row["ID"]]
            assert row[header.key] == line[header.key]
            assert row[header.key] in documents
            # A name in both resources holds the line's value; a header-only field the header's.
            shared = (set(header.data_fields) & set(line_of(header).data_fields)) - {"ID", header.key, "Division"}
            for name in shared & set(row) - {"Created", "Modified"}:
                assert row[name] == line[name], name
        assert len({r["Timestamp"] for r in rows}) == len(rows)

    def test_a_line_edit_brings_back_every_row_of_its_document(
        self, header: Entity, api: Api, sandbox_http: httpx.Client
    ) -> None:
        document, lines = next((k, v) for k, v in lines_by_document(sandbox_http, header).items() if len(v) > 1)
        before = sandbox_http.get(f"/_sandbox/records/101/{header.path}/{document}").json()["record"]
        cursor = max(int(r["Timestamp"]) for r in walk(api, header))
        edited = sandbox_http.put(f"/_sandbox/records/101/{line_of(header).path}/{lines[0]['ID']}", json={"Notes": "x"})
        assert edited.status_code == 200, edited.text
        later = walk(api, header, cursor)
        assert sorted(r["ID"] for r in later) == sorted(line["ID"] for line in lines)
        assert {r[header.key] for r in later} == {document}
        after = sandbox_http.get(f"/_sandbox/records/101/{header.path}/{document}").json()["record"]
        assert after["Timestamp"] > before["Timestamp"]
        if "Modified" in header.data_fields:
            assert after["Modified"] >= before["Modified"]

    def test_a_line_delete_bumps_the_rest_and_leaves_its_own_entity_type(
        self, header: Entity, api: Api, sandbox_http: httpx.Client
    ) -> None:
        document, lines = next((k, v) for k, v in lines_by_document(sandbox_http, header).items() if len(v) > 1)
        cursor = max(int(r["Timestamp"]) for r in walk(api, header))
        gone = lines[0]["ID"]
        assert sandbox_http.delete(f"/_sandbox/records/101/{line_of(header).path}/{gone}").status_code == 204
        later = walk(api, header, cursor)
        assert sorted(r["ID"] for r in later) == sorted(line["ID"] for line in lines[1:])
        if header.line_entity_type is not None:
            assert deleted(api, header.line_entity_type) == [(gone, header.line_entity_type)]
        if header.entity_type is not None:
            assert deleted(api, header.entity_type) == []

    def test_a_document_delete_leaves_header_and_line_entity_types(
        self, header: Entity, api: Api, sandbox_http: httpx.Client
    ) -> None:
        document, lines = next(iter(lines_by_document(sandbox_http, header).items()))
        assert sandbox_http.delete(f"/_sandbox/records/101/{header.path}/{document}").status_code == 204
        assert document not in {r[header.key] for r in walk(api, header)}
        assert not {line["ID"] for line in lines} & {r["ID"] for r in walk(api, header)}
        if header.entity_type is not None:
            assert deleted(api, header.entity_type) == [(document, header.entity_type)]
        if header.line_entity_type is not None:
            expected = sorted((line["ID"], header.line_entity_type) for line in lines)
            assert sorted(deleted(api, header.line_entity_type)) == expected


class TestLineChangesThroughControl:
    def test_a_posted_line_joins_its_document_and_fires_one_webhook(
        self, api: Api, sandbox_http: httpx.Client, callback: Callback
    ) -> None:
        assert subscribe(api, callback.url, topic="SalesInvoices").status_code == 201
        invoice = records(sandbox_http, SALES_INVOICES.path)[0]
        item = results(api.get("101/logistics/Items", **{"$filter": "Code eq 'ITEM-003'"}))[0]
        body = {"InvoiceID": invoice["InvoiceID"], "Item": item["ID"], "Quantity": 2, "UnitPrice": 12.5}
        created = sandbox_http.post("/_sandbox/records/101/salesinvoice/SalesInvoiceLines", json=body)
        assert created.status_code == 201, created.text
        line = created.json()["record"]
        assert (line["InvoiceID"], line["AmountDC"], line["ItemCode"]) == (invoice["InvoiceID"], 25.0, "ITEM-003")
        wait_idle(sandbox_http)
        contents = [json.loads(content_bytes(b)) for b in callback.events()]
        assert [(c["Topic"], c["Key"], c["Action"]) for c in contents] == [
            ("SalesInvoices", invoice["InvoiceID"], "Update")
        ]
        expanded = api.get(
            f"101/salesinvoice/SalesInvoices(guid'{invoice['InvoiceID']}')", **{"$expand": "SalesInvoiceLines"}
        ).json()["d"]
        lines = expanded["SalesInvoiceLines"]["results"]
        assert line["ID"] in [x["ID"] for x in lines]
        assert expanded["AmountDC"] == round(sum(x["AmountDC"] for x in lines), 2)

    def test_bulk_edit_fires_one_webhook_per_change(
        self, api: Api, sandbox_http: httpx.Client, callback: Callback
    ) -> None:
        assert subscribe(api, callback.url, topic="SalesInvoices").status_code == 201
        lines = records(sandbox_http, "salesinvoice/SalesInvoiceLines")[:6]
        changes = [{"id": line["ID"], "fields": {"Quantity": 9}} for line in lines]
        edited = sandbox_http.post(
            "/_sandbox/records/101/salesinvoice/SalesInvoiceLines/bulk-edit", json={"changes": changes}
        )
        assert edited.status_code == 200, edited.text
        wait_idle(sandbox_http)
        # One webhook per change, each naming the line's invoice; they are sent concurrently, so in any order.
        keys = [json.loads(content_bytes(b))["Key"] for b in callback.events()]
        assert sorted(keys) == sorted(line["InvoiceID"] for line in lines)
        after = {r["ID"]: r for r in records(sandbox_http, "salesinvoice/SalesInvoiceLines")}
        assert all(after[line["ID"]]["Quantity"] == 9 for line in lines)
        assert all(after[line["ID"]]["AmountDC"] == round(9 * line["UnitPrice"], 2) for line in lines)

    def test_a_financial_entry_is_created_with_its_lines_and_deleted_per_line(
        self, api: Api, sandbox_http: httpx.Client
    ) -> None:
        body = {"Description": "Memoriaal", "TransactionLines": [{"AmountDC": 10.0}, {"AmountDC": -10.0}]}
        created = sandbox_http.post("/_sandbox/records/101/financialtransaction/Transactions", json=body)
        assert created.status_code == 201, created.text
        entry = created.json()["record"]["EntryID"]
        rows = [r for r in walk(api, TRANSACTIONS) if r["EntryID"] == entry]
        assert sorted(r["AmountDC"] for r in rows) == [-10.0, 10.0]
        assert (
            sandbox_http.delete(f"/_sandbox/records/101/financialtransaction/Transactions/{entry}").status_code == 204
        )
        assert sorted(deleted(api, 1)) == sorted((r["ID"], 1) for r in rows)

    def test_a_header_only_document_moves_its_modified_on_a_line_change(
        self, api: Api, sandbox_http: httpx.Client
    ) -> None:
        header = GENERAL_JOURNAL_ENTRIES
        entry = records(sandbox_http, header.path)[0]
        line = next(x for x in records(sandbox_http, line_of(header).path) if x["EntryID"] == entry["EntryID"])
        sandbox_http.post("/_sandbox/clock/advance", json={"seconds": 5})
        sandbox_http.put(f"/_sandbox/records/101/{line_of(header).path}/{line['ID']}", json={"Notes": "gewijzigd"})
        key = f"101/{header.path}(guid'{entry['EntryID']}')"
        after = api.get(key, **{"$expand": "GeneralJournalEntryLines"}).json()["d"]
        assert after["Modified"] != entry["Modified"]
        assert "gewijzigd" in [x["Notes"] for x in after["GeneralJournalEntryLines"]["results"]]


class TestODataOnDocuments:
    def test_select_may_name_the_lines_and_they_are_deferred(self, api: Api) -> None:
        rows = results(api.get("101/salesinvoice/SalesInvoices", **{"$select": "InvoiceID,SalesInvoiceLines"}))
        assert set(rows[0]) == {"__metadata", "InvoiceID", "SalesInvoiceLines"}
        assert rows[0]["SalesInvoiceLines"]["__deferred"]["uri"].endswith("/SalesInvoiceLines")

    def test_keyed_filters_on_key_fields(self, api: Api) -> None:
        invoices = results(api.get("101/salesinvoice/SalesInvoices", **{"$select": "InvoiceID"}))
        a, b = invoices[0]["InvoiceID"], invoices[1]["InvoiceID"]
        flt = f"InvoiceID eq guid'{a}' or InvoiceID eq guid'{b}'"
        picked = results(api.get("101/salesinvoice/SalesInvoices", **{"$filter": flt, "$select": "InvoiceID"}))
        assert sorted(r["InvoiceID"] for r in picked) == sorted([a, b])
        entry = results(api.get("101/salesorder/GoodsDeliveries", **{"$select": "EntryID"}))[0]["EntryID"]
        flt = f"EntryID eq guid'{entry}'"
        assert len(results(api.get("101/salesorder/GoodsDeliveries", **{"$filter": flt}))) == 1
        euro = results(api.get("101/general/Currencies", **{"$filter": "Code eq 'EUR'"}))
        assert [c["Code"] for c in euro] == ["EUR"]
        assert api.get("101/general/Currencies('USD')").json()["d"]["Code"] == "USD"

    def test_a_method_the_resource_lacks_is_405(self, api: Api) -> None:
        assert api.post("101/financialtransaction/TransactionLines", {"AmountDC": 1}).status_code == 405
        assert api.post("101/sync/CRM/Accounts", {}).status_code == 405
