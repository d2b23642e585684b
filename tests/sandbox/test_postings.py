"""Postings (issue 18): the refusals Exact gives, with its texts and nothing written; good posts read back; a
delivery or receipt books against its order line; the `drop` fault; counts by HTTP method; the seeded ledger."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.records import Change
from tests.conftest import ServerThread
from tests.sandbox.conftest import Api, error_message, results

Row = dict[str, Any]
GJE = "generaljournalentry/GeneralJournalEntries"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(minute_limit=1000)


def records(http: httpx.Client, path: str, division: int = 101) -> list[Row]:
    return list(http.get(f"/_sandbox/records/{division}/{path}").json()["records"])


def by_code(http: httpx.Client, path: str, division: int = 101) -> dict[str, str]:
    return {str(r["Code"]).strip(): r["ID"] for r in records(http, path, division)}


def one(http: httpx.Client, path: str, division: int = 101, **match: Any) -> Row:
    found = [r for r in records(http, path, division) if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (path, match)
    return found[0]


def calls(http: httpx.Client, **params: Any) -> int:
    return int(http.get("/_sandbox/calls", params=params).json()["total"])


class Ledger:
    """The seeded codes of one division as the IDs a body takes."""

    def __init__(self, http: httpx.Client, division: int = 101) -> None:
        self.division = division
        self.gl = by_code(http, "financial/GLAccounts", division)
        self.accounts = by_code(http, "crm/Accounts", division)
        self.item = records(http, "logistics/Items", division)[0]["ID"]
        self.warehouse = by_code(http, "inventory/Warehouses", division)["1"]

    def journal_entry(self, journal: str = "90", date: str = "2026-03-10", *amounts: float, **line: Any) -> Row:
        lines = [{"GLAccount": self.gl["8000"], "AmountDC": a, "Date": date, **line} for a in amounts or (100.0,)]
        lines.append({"GLAccount": self.gl["7000"], "AmountDC": -sum(amounts or (100.0,)), "Date": date})
        return {"JournalCode": journal, "GeneralJournalEntryLines": lines}

    def sales_entry(self, customer: str = "1001", **header: Any) -> Row:
        line = {"GLAccount": self.gl["8000"], "AmountFC": 100.0, "VATCode": "2", "Description": "Omzet"}
        body = {"Journal": "70", "Customer": self.accounts[customer], "EntryDate": "2026-03-10", "YourRef": "SE-T"}
        return {**body, "SalesEntryLines": [line], **header}

    def purchase_entry(self, supplier: str = "1003", **header: Any) -> Row:
        line = {"GLAccount": self.gl["7000"], "AmountFC": 50.0, "VATCode": "2"}
        body = {"Journal": "60", "Supplier": self.accounts[supplier], "EntryDate": "2026-03-10", "YourRef": "PE-T"}
        return {**body, "PurchaseEntryLines": [line], **header}


@pytest.fixture
def ledger(sandbox_http: httpx.Client) -> Ledger:
    return Ledger(sandbox_http)


_LINE_PATHS = {
    GJE: "generaljournalentry/GeneralJournalEntryLines",
    "salesentry/SalesEntries": "salesentry/SalesEntryLines",
    "purchaseentry/PurchaseEntries": "purchaseentry/PurchaseEntryLines",
}


def refuse(api: Api, http: httpx.Client, path: str, body: Row, text: str, division: int = 101) -> None:
    """The POST answers 400 with Exact's text; no write call succeeds and no record or line is added."""
    paths = (path, _LINE_PATHS.get(path, path))
    before = {p: len(records(http, p, division)) for p in paths}
    http.post("/_sandbox/calls/reset")
    response = api.post(f"{division}/{path}", body)
    assert response.status_code == 400, response.text
    assert error_message(response) == text
    assert calls(http, method="POST", status=201) == 0
    assert {p: len(records(http, p, division)) for p in paths} == before


def created(api: Api, path: str, body: Row, division: int = 101) -> Row:
    response = api.post(f"{division}/{path}", body)
    assert response.status_code == 201, response.text
    return dict(response.json()["d"])


class TestRefusals:
    def test_journal_required(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        body = ledger.journal_entry()
        del body["JournalCode"]
        refuse(api, sandbox_http, GJE, body, "Verplicht: Dagboek")
        body = ledger.sales_entry()
        del body["Journal"]
        refuse(api, sandbox_http, "salesentry/SalesEntries", body, "Verplicht: Dagboek")

    def test_no_financial_year_for_the_date(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        refuse(api, sandbox_http, GJE, ledger.journal_entry("90", "2024-12-31"), "Unknown: Fiscal year")
        body = ledger.purchase_entry(EntryDate="2027-01-01")
        refuse(api, sandbox_http, "purchaseentry/PurchaseEntries", body, "Unknown: Fiscal year")

    def test_closed_period_per_journal_and_division(self, api: Api, sandbox_http: httpx.Client) -> None:
        ledger = Ledger(sandbox_http)
        refuse(api, sandbox_http, GJE, ledger.journal_entry("90", "2025-06-30"), "Periode is afgesloten")
        refuse(api, sandbox_http, GJE, ledger.journal_entry("90", "2026-01-15"), "Periode is afgesloten")
        created(api, GJE, ledger.journal_entry("91", "2026-01-15"))
        created(api, GJE, ledger.journal_entry("90", "2025-07-01"))
        other = Ledger(sandbox_http, 202)
        created(api, GJE, other.journal_entry("90", "2026-01-15"), division=202)

    def test_unbalanced_entry(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        body = ledger.journal_entry()
        body["GeneralJournalEntryLines"][-1]["AmountDC"] = -99.99
        refuse(api, sandbox_http, GJE, body, "BTW verschil (boeking niet in evenwicht)")

    def test_account_not_a_customer(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        text, prospect = "Ongeldig: Klant (Type)", ledger.accounts["1031"]
        refuse(api, sandbox_http, "salesentry/SalesEntries", ledger.sales_entry("1031"), text)
        invoice = {"InvoiceTo": prospect, "SalesInvoiceLines": [{"Item": ledger.item, "Quantity": 1}]}
        refuse(api, sandbox_http, "salesinvoice/SalesInvoices", invoice, text)
        order = {"OrderedBy": prospect, "SalesOrderLines": [{"Item": ledger.item, "Quantity": 1}]}
        refuse(api, sandbox_http, "salesorder/SalesOrders", order, text)

    def test_account_not_a_supplier(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        text, customer = "Ongeldig: Leverancier (type)", ledger.accounts["1001"]
        refuse(api, sandbox_http, "purchaseentry/PurchaseEntries", ledger.purchase_entry("1001"), text)
        lines = [{"Item": ledger.item, "Quantity": 1, "UnitPrice": 2.0}]
        invoice = {"Journal": "60", "Supplier": customer, "InvoiceDate": "2026-04-01", "PurchaseInvoiceLines": lines}
        refuse(api, sandbox_http, "purchase/PurchaseInvoices", invoice, text)
        refuse(api, sandbox_http, "purchaseorder/PurchaseOrders", {"Supplier": customer}, text)
        refuse(api, sandbox_http, "purchaseorder/GoodsReceipts", {"Supplier": customer}, text)

    @pytest.mark.parametrize("code", ["1300", "1600", "1500", "1100"])
    def test_gl_account_of_a_control_type(
        self, code: str, api: Api, sandbox_http: httpx.Client, ledger: Ledger
    ) -> None:
        body = ledger.journal_entry()
        body["GeneralJournalEntryLines"][0]["GLAccount"] = ledger.gl[code]
        refuse(api, sandbox_http, GJE, body, f"Ledger account {code} is of a wrong type")

    def test_vat_code_on_a_journal_without_vat(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        refuse(
            api, sandbox_http, GJE, ledger.journal_entry("90", "2026-03-10", VATCode="2"), "Niet toegestaan: Btw-code"
        )
        created(api, GJE, ledger.journal_entry("91", "2026-03-10", VATCode="2"))

    def test_payment_condition_required(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        refuse(api, sandbox_http, "salesentry/SalesEntries", ledger.sales_entry("1032"), "Verplicht: Betalingsconditie")
        entry = created(api, "salesentry/SalesEntries", ledger.sales_entry("1032", PaymentCondition="14"))
        assert entry["PaymentCondition"] == "14"
        assert created(api, "salesentry/SalesEntries", ledger.sales_entry("1001"))["PaymentCondition"] == "30"

    def test_entry_number_in_use(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        used = {r["EntryNumber"] for r in records(sandbox_http, GJE) if r["JournalCode"] == "90"}
        body = {**ledger.journal_entry(), "EntryNumber": min(used)}
        refuse(api, sandbox_http, GJE, body, "In gebruik: Boekstuknummer")
        assert created(api, GJE, ledger.journal_entry())["EntryNumber"] == max(used) + 1
        # The same number in another journal is free.
        assert created(api, GJE, {**ledger.journal_entry("91"), "EntryNumber": min(used)})["EntryNumber"] == min(used)

    def test_a_put_is_checked_too_and_keeps_its_number(
        self, api: Api, sandbox_http: httpx.Client, ledger: Ledger
    ) -> None:
        entry = created(api, GJE, ledger.journal_entry())
        url = f"101/{GJE}(guid'{entry['EntryID']}')"
        unbalanced = ledger.journal_entry("90", "2026-03-10", 10.0)
        unbalanced["GeneralJournalEntryLines"][-1]["AmountDC"] = 0.0
        response = api.put(url, unbalanced)
        assert (response.status_code, error_message(response)) == (400, "BTW verschil (boeking niet in evenwicht)")
        assert api.put(url, ledger.journal_entry("90", "2026-03-10", 25.0)).status_code == 204
        after = api.get(url, **{"$expand": "GeneralJournalEntryLines"}).json()["d"]
        assert after["EntryNumber"] == entry["EntryNumber"]
        assert [x["AmountDC"] for x in after["GeneralJournalEntryLines"]["results"]] == [25.0, -25.0]


class TestGoodPosts:
    def test_a_journal_entry_reads_back_field_by_field(self, api: Api, ledger: Ledger) -> None:
        body = ledger.journal_entry("90", "2026-03-10", 120.5, Description="Memo")
        entry = created(api, GJE, body)
        got = api.get(f"101/{GJE}(guid'{entry['EntryID']}')", **{"$expand": "GeneralJournalEntryLines"}).json()["d"]
        assert (got["JournalCode"], got["JournalDescription"]) == ("90", "Memoriaal")
        assert (got["FinancialYear"], got["FinancialPeriod"]) == (2026, 3)
        lines = got["GeneralJournalEntryLines"]["results"]
        assert [(x["GLAccountCode"], x["AmountDC"], x["AmountFC"]) for x in lines] == [
            ("8000", 120.5, 120.5),
            ("7000", -120.5, -120.5),
        ]
        assert {x["EntryNumber"] for x in lines} == {got["EntryNumber"]}

    def test_sales_and_purchase_entries(self, api: Api, ledger: Ledger) -> None:
        sales = created(api, "salesentry/SalesEntries", ledger.sales_entry())
        got = api.get(f"101/salesentry/SalesEntries(guid'{sales['EntryID']}')").json()["d"]
        assert (got["Type"], got["ReportingYear"], got["ReportingPeriod"], got["YourRef"]) == (20, 2026, 3, "SE-T")
        assert got["CustomerName"]
        assert got["JournalDescription"] == "Verkoopboek"
        assert got["AmountFC"] == 100.0
        credit = created(api, "purchaseentry/PurchaseEntries", ledger.purchase_entry(Type=31))
        got = api.get(f"101/purchaseentry/PurchaseEntries(guid'{credit['EntryID']}')").json()["d"]
        assert (got["Type"], got["Supplier"], got["PaymentCondition"]) == (31, ledger.accounts["1003"], "30")

    def test_purchase_invoice_and_stock_count(self, api: Api, ledger: Ledger) -> None:
        lines = [{"Item": ledger.item, "Quantity": 2.0, "UnitPrice": 5.0}]
        body = {"Journal": "60", "Supplier": ledger.accounts["1003"], "InvoiceDate": "2026-04-01"}
        invoice = created(api, "purchase/PurchaseInvoices", {**body, "PurchaseInvoiceLines": lines})
        got = api.get(f"101/purchase/PurchaseInvoices(guid'{invoice['ID']}')", **{"$expand": "PurchaseInvoiceLines"})
        record = got.json()["d"]
        assert (record["FinancialYear"], record["FinancialPeriod"], record["EntryNumber"]) == (2026, 4, 34003)
        assert record["Amount"] == 10.0
        assert [(x["Quantity"], x["InvoiceID"]) for x in record["PurchaseInvoiceLines"]["results"]] == [
            (2.0, invoice["ID"])
        ]
        count = created(
            api,
            "inventory/StockCounts",
            {"Warehouse": ledger.warehouse, "StockCountLines": [{"Item": ledger.item, "QuantityNew": 5.0}]},
        )
        lines = results(
            api.get("101/inventory/StockCountLines", **{"$filter": f"StockCountID eq guid'{count['StockCountID']}'"})
        )
        assert [(x["Item"], x["QuantityNew"]) for x in lines] == [(ledger.item, 5.0)]

    def test_a_sales_order_shows_in_its_sync_resource_and_fires_its_webhook(
        self, api: Api, ledger: Ledger, sandbox: ServerThread
    ) -> None:
        changes: list[Change] = []
        sandbox.state.store.subscribe(changes.append)  # type: ignore[attr-defined]
        body = {"OrderedBy": ledger.accounts["1001"], "YourRef": "SO-T"}
        order = created(
            api, "salesorder/SalesOrders", {**body, "SalesOrderLines": [{"Item": ledger.item, "Quantity": 3}]}
        )
        rows = results(api.get("101/sync/SalesOrder/SalesOrders", **{"$filter": "Timestamp gt 1L"}))
        assert [r["YourRef"] for r in rows if r["OrderID"] == order["OrderID"]] == ["SO-T"]
        assert [(c.topic, c.key) for c in changes] == [("SalesOrders", order["OrderID"])]


class TestHours:
    def test_an_hour_names_a_project_employee_and_activity(self, api: Api, sandbox_http: httpx.Client) -> None:
        project = one(sandbox_http, "project/Projects", Code="P101-002")
        activity = next(a for a in records(sandbox_http, "project/WBSActivities") if a["Project"] == project["ID"])
        employee = one(sandbox_http, "payroll/Employees", Code="2")
        body = {"Project": project["ID"], "Activity": activity["ID"], "Employee": employee["ID"], "HourStatus": 10}
        hours = created(api, "project/TimeTransactions", {**body, "Quantity": 2.5, "Date": "2026-03-10"})
        got = api.get(f"101/project/TimeTransactions(guid'{hours['ID']}')").json()["d"]
        assert {k: got[k] for k in body} == body
        assert (got["ProjectCode"], got["ActivityDescription"]) == ("P101-002", activity["Description"])


class TestOrderLines:
    def test_a_delivery_adds_to_the_open_sales_order_line(
        self, api: Api, sandbox_http: httpx.Client, sandbox: ServerThread
    ) -> None:
        order = one(sandbox_http, "salesorder/SalesOrders", YourRef="OPEN-SO-1")
        line = one(sandbox_http, "salesorder/SalesOrderLines", OrderID=order["OrderID"])
        assert (line["Quantity"], line["QuantityDelivered"]) == (10.0, 4.0)
        changes: list[Change] = []
        sandbox.state.store.subscribe(changes.append)  # type: ignore[attr-defined]
        # Over what is open (6): Exact books it, and so does the sandbox.
        body = {"GoodsDeliveryLines": [{"SalesOrderLineID": line["ID"], "QuantityDelivered": 8.0}]}
        delivery = created(api, "salesorder/GoodsDeliveries", body)
        after = api.get(f"101/salesorder/SalesOrderLines(guid'{line['ID']}')").json()["d"]
        assert after["QuantityDelivered"] == 12.0
        rows = results(api.get("101/sync/SalesOrder/GoodsDeliveryLines", **{"$filter": "Timestamp gt 1L"}))
        assert [r["SalesOrderLineID"] for r in rows if r["EntryID"] == delivery["EntryID"]] == [line["ID"]]
        assert {c.topic for c in changes} == {"GoodsDeliveries", "SalesOrders"}

    def test_a_receipt_adds_to_the_open_purchase_order_line(self, api: Api, sandbox_http: httpx.Client) -> None:
        order = one(sandbox_http, "purchaseorder/PurchaseOrders", 202, YourRef="OPEN-PO-1")
        line = one(sandbox_http, "purchaseorder/PurchaseOrderLines", 202, PurchaseOrderID=order["PurchaseOrderID"])
        assert (line["QuantityOrdered"], line["ReceivedQuantity"]) == (10.0, 3.0)
        body = {
            "Supplier": order["Supplier"],
            "GoodsReceiptLines": [{"PurchaseOrderLineID": line["ID"], "QuantityReceived": 7.0}],
        }
        receipt = created(api, "purchaseorder/GoodsReceipts", body, division=202)
        after = api.get(f"202/purchaseorder/PurchaseOrderLines(guid'{line['ID']}')").json()["d"]
        assert after["ReceivedQuantity"] == 10.0
        got = api.get(f"202/purchaseorder/GoodsReceipts(guid'{receipt['ID']}')", **{"$expand": "GoodsReceiptLines"})
        received = got.json()["d"]["GoodsReceiptLines"]["results"]
        assert [(x["PurchaseOrderID"], x["GoodsReceiptID"]) for x in received] == [
            (order["PurchaseOrderID"], receipt["ID"])
        ]


class TestControl:
    def test_drop_writes_and_answers_500(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        fault = {"kind": "drop", "endpoint": "salesentry/SalesEntries", "count": 1}
        assert sandbox_http.post("/_sandbox/faults", json=fault).status_code == 201
        # A read of the same endpoint is no write: the fault waits for the POST.
        assert api.get("101/salesentry/SalesEntries").status_code == 200
        response = api.post("101/salesentry/SalesEntries", ledger.sales_entry(YourRef="DROPPED"))
        assert response.status_code == 500
        assert error_message(response) == "An error occurred. Please try again later."
        assert len([r for r in records(sandbox_http, "salesentry/SalesEntries") if r["YourRef"] == "DROPPED"]) == 1
        assert api.post("101/salesentry/SalesEntries", ledger.sales_entry()).status_code == 201

    def test_calls_count_by_method(self, api: Api, sandbox_http: httpx.Client, ledger: Ledger) -> None:
        sandbox_http.post("/_sandbox/calls/reset")
        api.get("101/salesentry/SalesEntries")
        entry = created(api, "salesentry/SalesEntries", ledger.sales_entry())
        url = f"101/salesentry/SalesEntries(guid'{entry['EntryID']}')"
        assert api.put(url, ledger.sales_entry()).status_code == 204
        assert api.delete(url).status_code == 204
        endpoint = {"endpoint": "salesentry/SalesEntries"}
        counted = {m: calls(sandbox_http, method=m, **endpoint) for m in ("GET", "POST", "PUT", "DELETE", "write")}
        assert counted == {"GET": 1, "POST": 1, "PUT": 1, "DELETE": 1, "write": 3}
        assert calls(sandbox_http, method="post", status=201) == 1
        entries = [
            c for c in sandbox_http.get("/_sandbox/calls").json()["calls"] if c["endpoint"] == endpoint["endpoint"]
        ]
        assert {c["status"]: c["methods"] for c in entries} == {
            200: {"GET": 1},
            201: {"POST": 1},
            204: {"DELETE": 1, "PUT": 1},
        }
        assert sandbox_http.get("/_sandbox/calls", params={"method": "PATCH"}).status_code == 400


class TestSeededLedger:
    @pytest.mark.parametrize("division", [101, 202])
    def test_journals_periods_and_their_status(self, division: int, api: Api) -> None:
        journals = {j["Code"]: j for j in results(api.get(f"{division}/financial/Journals"))}
        assert {c: (j["Type"], j["AllowVAT"]) for c, j in journals.items() if c in ("70", "60", "90", "91")} == {
            "70": (20, True),
            "60": (22, True),
            "90": (90, False),
            "91": (90, True),
        }
        assert {journals["20"]["Type"], journals["10"]["Type"]} == {12, 10}
        periods = results(api.get(f"{division}/financial/FinancialPeriods"))
        assert sorted({p["FinYear"] for p in periods}) == [2025, 2026]
        assert len(periods) == 24
        status = "read/financial/JournalStatusByFinancialPeriod"
        flt = "Journal eq '90' and Year eq 2026 and Period eq 1"
        assert [r["Status"] for r in results(api.get(f"{division}/{status}", **{"$filter": flt}))] == [
            1 if division == 101 else 0
        ]
        closed = results(api.get(f"{division}/{status}", **{"$filter": "Status eq 1 and Journal eq '70'"}))
        assert sorted((r["Year"], r["Period"]) for r in closed) == [(2025, p) for p in range(1, 7)]

    def test_references_postings_name(self, api: Api, sandbox_http: httpx.Client) -> None:
        codes = {p: sorted(by_code(sandbox_http, p)) for p in ("cashflow/PaymentConditions", "hrm/Costcenters")}
        assert codes == {"cashflow/PaymentConditions": ["00", "14", "30"], "hrm/Costcenters": ["100", "200"]}
        assert sorted(by_code(sandbox_http, "hrm/Costunits")) == ["A", "B"]
        employees = {e["Code"]: (e["FullName"], e["HID"]) for e in records(sandbox_http, "payroll/Employees")}
        assert employees == {"1": ("Jan Jansen", 1), "2": ("Piet de Vries", 2)}
        activities = records(sandbox_http, "project/WBSActivities")
        projects = {p["ID"]: p["Code"] for p in records(sandbox_http, "project/Projects")}
        assert sorted(projects.values()) == ["P101-001", "P101-002", "P101-003", "P101-004"]
        assert sorted(projects[a["Project"]] for a in activities) == sorted([*projects.values()] * 2)
        own = {a["ID"]: a["Project"] for a in activities}
        for hours in records(sandbox_http, "project/TimeTransactions"):
            assert own[hours["Activity"]] == hours["Project"]
        accounts = {str(a["Code"]).strip(): a for a in records(sandbox_http, "crm/Accounts")}
        assert (accounts["1031"]["Status"], accounts["1031"]["IsSupplier"]) == ("P", False)
        assert accounts["1032"]["PaymentConditionSales"] == ""
        assert accounts["1001"]["PaymentConditionSales"] == "30"
        assert accounts["1007"]["VATNumber"] == accounts["1008"]["VATNumber"] == "NL999999999B01"
        assert (accounts["1002"]["VATNumber"], accounts["1002"]["ChamberOfCommerce"]) == (
            "NL 8123.45.678.B01",
            "12.34.56.78",
        )
