"""Schema faults: Exact changing under a client, one resource at a time, until the faults are cleared."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sandbox.entities import SALES_INVOICES
from tests.sandbox.conftest import Api, error_message, results

ACCOUNTS = "crm/Accounts"
SYNC_ACCOUNTS = "sync/CRM/Accounts"
SYNC_INVOICES = "sync/SalesInvoice/SalesInvoices"
EVERY = {"$filter": "Blocked eq false"}  # crm/Accounts has mandatory filtering
SINCE_0 = {"$filter": "Timestamp gt 0L"}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MS_DATE = re.compile(r"^/Date\((\d+)\)/$")
Row = dict[str, Any]


def arm(http: httpx.Client, **fault: Any) -> httpx.Response:
    response = http.post("/_sandbox/faults", json={"kind": "schema", **fault})
    assert response.status_code == 201, response.text
    return response


def stored(http: httpx.Client, path: str, division: int = 101) -> list[Row]:
    return list(http.get(f"/_sandbox/records/{division}/{path}").json()["records"])


def walk(api: Api, path: str, division: int = 101, params: dict[str, str] | None = None) -> list[Row]:
    """Every row of the resource, following `__next`; a sync resource from Timestamp 0."""
    response = api.get(f"{division}/{path}", **(params or SINCE_0))
    rows: list[Row] = []
    while True:
        assert response.status_code == 200, response.text
        rows += response.json()["d"]["results"]
        if "__next" not in response.json()["d"]:
            return rows
        response = api.get(response.json()["d"]["__next"])


class TestDrop:
    def test_a_dropped_field_leaves_list_keyed_and_create_answers(self, api: Api, sandbox_http: httpx.Client) -> None:
        arm(sandbox_http, path=ACCOUNTS, drop="Email")
        listed = results(api.get(f"101/{ACCOUNTS}", **EVERY))
        assert listed
        assert all("Email" not in r and "Name" in r for r in listed)
        keyed = api.get(f"101/{ACCOUNTS}(guid'{listed[0]['ID']}')")
        assert keyed.status_code == 200
        assert "Email" not in keyed.json()["d"]
        created = api.post(f"101/{ACCOUNTS}", {"Name": "Drift BV", "Email": "drift@example.nl"})
        assert created.status_code == 201
        assert "Email" not in created.json()["d"]
        # The store still holds it: only the answers changed.
        assert "drift@example.nl" in {r["Email"] for r in stored(sandbox_http, ACCOUNTS)}

    def test_a_dropped_field_in_select_is_the_400_of_an_unknown_field(
        self, api: Api, sandbox_http: httpx.Client
    ) -> None:
        unknown = api.get(f"101/{ACCOUNTS}", **EVERY, **{"$select": "Nonexistent"})
        assert unknown.status_code == 400
        arm(sandbox_http, path=ACCOUNTS, drop=["Email"])
        dropped = api.get(f"101/{ACCOUNTS}", **EVERY, **{"$select": "ID,Email"})
        assert dropped.status_code == 400
        assert error_message(dropped) == error_message(unknown).replace("Nonexistent", "Email")
        assert api.get(f"101/{ACCOUNTS}", **{"$filter": "Email eq 'info1@example.nl'"}).status_code == 400

    def test_the_drop_is_scoped_to_its_path_and_division(self, api: Api, sandbox_http: httpx.Client) -> None:
        arm(sandbox_http, path=ACCOUNTS, drop="Email", division=202)
        assert all("Email" in r for r in results(api.get(f"101/{ACCOUNTS}", **EVERY)))
        assert all("Email" not in r for r in results(api.get(f"202/{ACCOUNTS}", **EVERY)))
        assert all("Email" in r for r in walk(api, SYNC_ACCOUNTS, division=202))

    def test_it_holds_until_the_faults_are_cleared(self, api: Api, sandbox_http: httpx.Client) -> None:
        arm(sandbox_http, path=SYNC_ACCOUNTS, drop="Email")
        for _ in range(3):
            assert all("Email" not in r for r in walk(api, SYNC_ACCOUNTS))
        shown = sandbox_http.get("/_sandbox/faults").json()["faults"]
        assert [(f["kind"], f["path"], f["drop"]) for f in shown] == [("schema", SYNC_ACCOUNTS, ["Email"])]
        assert sandbox_http.delete("/_sandbox/faults").json()["faults"] == []
        assert all("Email" in r for r in walk(api, SYNC_ACCOUNTS))

    def test_a_dropped_line_field_leaves_expanded_lines(self, api: Api, sandbox_http: httpx.Client) -> None:
        arm(sandbox_http, path="salesinvoice/SalesInvoiceLines", drop="UnitPrice")
        invoices = results(api.get("101/salesinvoice/SalesInvoices", **{"$expand": "SalesInvoiceLines"}))
        lines = [line for invoice in invoices for line in invoice["SalesInvoiceLines"]["results"]]
        assert lines
        assert all("UnitPrice" not in line and "Quantity" in line for line in lines)
        assert all("Description" in invoice for invoice in invoices)


class TestRename:
    def test_a_renamed_field_keeps_its_value_and_its_place(self, api: Api, sandbox_http: httpx.Client) -> None:
        before = {r["ID"]: list(r) for r in walk(api, SYNC_ACCOUNTS)}
        arm(sandbox_http, path=SYNC_ACCOUNTS, rename={"Email": "EMail"})
        emails = {r["ID"]: r["Email"] for r in stored(sandbox_http, ACCOUNTS)}
        rows = walk(api, SYNC_ACCOUNTS)
        assert {r["ID"]: r["EMail"] for r in rows} == emails
        assert all(list(r) == [n if n != "Email" else "EMail" for n in before[r["ID"]]] for r in rows)
        assert all("Email" in r for r in results(api.get(f"101/{ACCOUNTS}", **EVERY)))

    def test_query_options_take_the_new_name_and_refuse_the_old(self, api: Api, sandbox_http: httpx.Client) -> None:
        arm(sandbox_http, path=ACCOUNTS, rename={"Email": "EMail"})
        query = {"$filter": "EMail eq 'info1@example.nl'", "$select": "ID,EMail", "$orderby": "EMail desc"}
        assert [r["EMail"] for r in results(api.get(f"101/{ACCOUNTS}", **query))] == ["info1@example.nl"]
        assert api.get(f"101/{ACCOUNTS}", **EVERY, **{"$select": "Email"}).status_code == 400
        ordered = [r["EMail"] for r in results(api.get(f"101/{ACCOUNTS}", **EVERY, **{"$orderby": "EMail desc"}))]
        assert ordered == sorted(ordered, reverse=True)


class TestDateFormat:
    def test_a_date_turns_iso_on_its_resource_only(self, api: Api, sandbox_http: httpx.Client) -> None:
        arm(sandbox_http, path=SYNC_ACCOUNTS, date_format={"Modified": "iso"})
        modified = {r["ID"]: r["Modified"] for r in stored(sandbox_http, ACCOUNTS)}
        rows = walk(api, SYNC_ACCOUNTS)
        assert rows
        assert all(ISO.match(r["Modified"]) and MS_DATE.match(r["Created"]) for r in rows)
        for row in rows:
            ms = int(MS_DATE.fullmatch(modified[row["ID"]]).group(1))  # type: ignore[union-attr]
            assert datetime.fromisoformat(row["Modified"]) == datetime.fromtimestamp(ms / 1000, UTC)
        assert all(MS_DATE.match(r["Modified"]) for r in results(api.get(f"101/{ACCOUNTS}", **EVERY)))


class TestRows:
    def test_a_line_row_sync_resource_answers_one_row_per_document(self, api: Api, sandbox_http: httpx.Client) -> None:
        invoices = {r["InvoiceID"] for r in stored(sandbox_http, SALES_INVOICES.path)}
        lines = stored(sandbox_http, "salesinvoice/SalesInvoiceLines")
        assert len(lines) > len(invoices)
        arm(sandbox_http, path=SYNC_INVOICES, rows="headers")
        rows = walk(api, SYNC_INVOICES)
        assert sorted(r["InvoiceID"] for r in rows) == sorted(invoices)
        assert all("ID" not in r and "LineNumber" not in r and "InvoiceNumber" in r for r in rows)
        sandbox_http.delete("/_sandbox/faults")
        assert sorted(r["ID"] for r in walk(api, SYNC_INVOICES)) == sorted(line["ID"] for line in lines)

    def test_a_document_resource_answers_one_row_per_line(self, api: Api, sandbox_http: httpx.Client) -> None:
        lines = {line["ID"]: line for line in stored(sandbox_http, "salesinvoice/SalesInvoiceLines")}
        arm(sandbox_http, path=SALES_INVOICES.path, rows="lines", division=101)
        rows = walk(api, SALES_INVOICES.path, params={"$inlinecount": "allpages"})  # any option but the sync filter
        assert sorted(r["ID"] for r in rows) == sorted(lines)
        assert all(r["InvoiceID"] == lines[r["ID"]]["InvoiceID"] and "InvoiceNumber" in r for r in rows)
        assert all("SalesInvoiceLines" not in r for r in rows)
        # Another division keeps its invoices whole.
        whole = results(api.get(f"202/{SALES_INVOICES.path}"))
        assert whole
        assert all("SalesInvoiceLines" in r and "ID" not in r for r in whole)


class TestRefusals:
    @pytest.mark.parametrize(
        "fault",
        [
            {"path": "crm/Nothing", "drop": "Email"},
            {"path": ACCOUNTS, "drop": "Nonexistent"},
            {"path": ACCOUNTS, "rename": {"Email": "Name"}},
            {"path": ACCOUNTS, "date_format": {"Modified": "rfc822"}},
            {"path": ACCOUNTS, "rows": "headers"},
            {"path": SYNC_INVOICES, "rows": "lines"},
            {"path": ACCOUNTS},
            {"path": ACCOUNTS, "drop": "Email", "count": 2},
        ],
        ids=["path", "field", "clash", "format", "headers", "lines", "nothing", "count"],
    )
    def test_a_fault_that_does_not_fit_its_resource_is_refused(
        self, fault: dict[str, Any], sandbox_http: httpx.Client
    ) -> None:
        response = sandbox_http.post("/_sandbox/faults", json={"kind": "schema", **fault})
        assert response.status_code == 400, response.text
        assert sandbox_http.get("/_sandbox/faults").json()["faults"] == []
