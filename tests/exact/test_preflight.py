"""Pre-flight checks against the sandbox: for each, the naive write gets Exact's refusal (or a wrong booking), and
`Preflight.check` stops the same write first, naming the reason and the values, with no write call counted.

Bodies are built as the Writer sends them: references resolved in the division, header dates ISO 8601.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from exact import (
    CATALOGUE,
    SPECS,
    ExactClient,
    Preflight,
    PreflightFailed,
    Query,
    References,
    ValidationError,
    WriteSpec,
    guid_literal,
    string_literal,
    write_date,
)
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected

GJE, SALES, PURCHASE = SPECS["GeneralJournalEntry"], SPECS["SalesEntry"], SPECS["PurchaseEntry"]
Lines = list[dict[str, Any]]


@pytest.fixture
def client(connected: Connected) -> ExactClient:
    return connected.client()


@pytest.fixture
def references(client: ExactClient) -> References:
    return References(client)


@pytest.fixture
def preflight(client: ExactClient, references: References) -> Preflight:
    return Preflight(client, references)


class Sent:
    """Writes as the Writer sends them, through the plain client (naive) or the pre-flight check first."""

    def __init__(
        self, client: ExactClient, references: References, preflight: Preflight, sandbox: ServerThread
    ) -> None:
        self.client, self.references, self.preflight, self.sandbox = client, references, preflight, sandbox

    def body(
        self, division: int, spec: WriteSpec, fields: dict[str, Any], lines: Lines
    ) -> tuple[dict[str, Any], Lines]:
        # A None leaves the field out, as a command that does not name it.
        body = {k: self._value(division, spec.references, k, v, spec.dates) for k, v in fields.items() if v is not None}
        refs = spec.lines.references if spec.lines else {}
        return body, [{k: self._value(division, refs, k, v, frozenset()) for k, v in line.items()} for line in lines]

    def _value(self, division: int, refs: Any, name: str, value: Any, dates: frozenset[str]) -> Any:
        if name in refs:
            return self.references.resolve(division, refs[name], str(value), field=name)
        return write_date(value) if name in dates else value

    def naive(self, division: int, spec: WriteSpec, fields: dict[str, Any], lines: Lines) -> dict[str, Any]:
        body, sent = self.body(division, spec, fields, lines)
        assert spec.lines is not None
        return dict(self.client.create(division, spec.path, {**body, spec.lines.name: sent}))

    def refused(self, division: int, spec: WriteSpec, fields: dict[str, Any], lines: Lines) -> PreflightFailed:
        """The pre-flight failure, after showing that nothing was written."""
        body, sent = self.body(division, spec, fields, lines)
        before = self.writes()
        with pytest.raises(PreflightFailed) as caught:
            self.preflight.check(division, spec, body, sent)
        assert self.writes() == before
        assert caught.value.status is None
        return caught.value

    def passes(self, division: int, spec: WriteSpec, fields: dict[str, Any], lines: Lines) -> None:
        body, sent = self.body(division, spec, fields, lines)
        before = self.writes()
        self.preflight.check(division, spec, body, sent)
        assert self.writes() == before

    def writes(self) -> int:
        """POST, PUT and DELETE calls the sandbox counted on its data plane."""
        url = f"{self.sandbox.url}/_sandbox/calls"
        return sum(int(httpx.get(url, params={"method": m}).json()["total"]) for m in ("POST", "PUT", "DELETE"))


@pytest.fixture
def sent(client: ExactClient, references: References, preflight: Preflight, sandbox: ServerThread) -> Sent:
    return Sent(client, references, preflight, sandbox)


def refusal(text: str) -> Any:
    return pytest.raises(ValidationError, match=re.escape(text))


def gje_lines(day: str, *amounts: float, gl: tuple[str, ...] = ("7000", "8000"), **extra: Any) -> Lines:
    return [{"GLAccount": gl[n % len(gl)], "AmountDC": a, "Date": day, **extra} for n, a in enumerate(amounts)]


def entry_lines(gl: str = "8000", vat: str | None = "2") -> Lines:
    line: dict[str, Any] = {"GLAccount": gl, "AmountFC": 100.0, "Description": "Omzet"}
    return [line | ({"VATCode": vat} if vat else {})]


def sales_entry(**overrides: Any) -> dict[str, Any]:
    return {"Journal": "70", "Customer": "1001", "EntryDate": "2026-03-10", "PaymentCondition": "30"} | overrides


def purchase_entry(**overrides: Any) -> dict[str, Any]:
    return {"Journal": "60", "Supplier": "1003", "EntryDate": "2026-03-10"} | overrides


def first(client: ExactClient, division: int, path: str, flt: str) -> dict[str, Any]:
    return next(client.iter_records(division, path, Query(filter=flt)))


def open_line(client: ExactClient, division: int, order: str, your_ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The seeded order with an open quantity and its one line, as the lookup of its line kind reads it."""
    spec = SPECS[order]
    assert spec.lines is not None
    header = first(client, division, spec.path, f"YourRef eq {string_literal(your_ref)}")
    path = CATALOGUE.lookups["sales_order_line" if order == "SalesOrder" else "purchase_order_line"].path
    return header, first(client, division, path, f"{spec.key} eq {guid_literal(header[spec.key])}")


class TestJournalRequired:
    def test_naive_entry_without_journal_is_refused(self, sent: Sent) -> None:
        with refusal("Verplicht: Dagboek"):
            sent.naive(101, SALES, sales_entry(Journal=None), entry_lines())

    def test_ours_fails_first_naming_the_field(self, sent: Sent) -> None:
        failed = sent.refused(101, SALES, sales_entry(Journal=None), entry_lines())
        assert (failed.check, failed.values) == ("journal_required", {"field": "Journal"})
        assert str(failed) == "no journal: SalesEntry needs Journal"


class TestFinancialPeriod:
    def test_naive_date_without_financial_year_is_refused(self, sent: Sent) -> None:
        with refusal("Unknown: Fiscal year"):
            sent.naive(101, GJE, {"JournalCode": "90"}, gje_lines("2024-05-01", 100.0, -100.0))

    def test_ours_names_the_date_and_the_years_there_are(self, sent: Sent) -> None:
        failed = sent.refused(101, GJE, {"JournalCode": "90"}, gje_lines("2024-05-01", 100.0, -100.0))
        assert failed.check == "financial_period"
        assert failed.values == {"date": "2024-05-01", "line": 1, "financial_years": [2025, 2026]}
        assert "date 2024-05-01 is in no financial period of division 101 (financial years: 2025, 2026)" in str(failed)

    def test_an_invoice_date_is_checked_too(self, sent: Sent) -> None:
        failed = sent.refused(101, SPECS["SalesInvoice"], {"InvoiceTo": "1001", "InvoiceDate": "2027-01-04"}, [])
        assert (failed.check, failed.values["date"]) == ("financial_period", "2027-01-04")


class TestPeriodOpen:
    def test_naive_entry_in_a_closed_period_is_refused(self, sent: Sent) -> None:
        with refusal("Periode is afgesloten"):
            sent.naive(101, GJE, {"JournalCode": "90"}, gje_lines("2025-03-15", 50.0, -50.0))

    def test_ours_names_period_and_journal(self, sent: Sent) -> None:
        failed = sent.refused(101, GJE, {"JournalCode": "90"}, gje_lines("2025-03-15", 50.0, -50.0))
        assert failed.check == "period_open"
        assert failed.values == {"journal": "90", "year": 2025, "period": 3, "date": "2025-03-15", "line": 1}
        assert "period 2025/3 is closed for journal 90" in str(failed)

    def test_closed_is_per_division_and_journal(self, sent: Sent) -> None:
        # 2026/1 is closed for journal 90 in division 101 only.
        assert sent.refused(101, GJE, {"JournalCode": "90"}, gje_lines("2026-01-20", 5.0, -5.0)).check == "period_open"
        sent.passes(202, GJE, {"JournalCode": "90"}, gje_lines("2026-01-20", 5.0, -5.0))
        sent.passes(101, GJE, {"JournalCode": "91"}, gje_lines("2026-01-20", 5.0, -5.0))
        sent.naive(202, GJE, {"JournalCode": "90"}, gje_lines("2026-01-20", 5.0, -5.0))  # Exact takes it

    def test_a_sales_entry_date_is_checked_against_its_journal(self, sent: Sent) -> None:
        failed = sent.refused(101, SALES, sales_entry(EntryDate="2025-06-30"), entry_lines())
        assert (failed.check, failed.values["journal"], failed.values["period"]) == ("period_open", "70", 6)


class TestBalanced:
    def test_naive_unbalanced_entry_is_refused(self, sent: Sent) -> None:
        with refusal("BTW verschil (boeking niet in evenwicht)"):
            sent.naive(101, GJE, {"JournalCode": "90"}, gje_lines("2026-03-10", 100.0, -87.5))

    def test_ours_says_by_how_much(self, sent: Sent) -> None:
        failed = sent.refused(101, GJE, {"JournalCode": "90"}, gje_lines("2026-03-10", 100.0, -87.5))
        assert failed.check == "balanced"
        assert failed.values == {"difference": 12.5, "debit": 100.0, "credit": 87.5}
        assert str(failed) == "entry not balanced: lines sum to 12.50 (debit 100.00, credit 87.50)"

    def test_to_the_cent_float_noise_is_balanced_and_a_cent_is_not(self, sent: Sent) -> None:
        sent.passes(101, GJE, {"JournalCode": "90"}, gje_lines("2026-03-10", 0.1, 0.2, -0.3))
        failed = sent.refused(101, GJE, {"JournalCode": "90"}, gje_lines("2026-03-10", 0.1, 0.2, -0.29))
        assert failed.values["difference"] == 0.01

    def test_amount_fc_counts_where_a_line_has_no_amount_dc(self, sent: Sent) -> None:
        lines = [{"GLAccount": "7000", "AmountFC": 10.0, "Date": "2026-03-10"}, *gje_lines("2026-03-10", -9.0)]
        assert sent.refused(101, GJE, {"JournalCode": "90"}, lines).values["difference"] == 1.0


class TestCustomer:
    def test_naive_entry_for_a_prospect_is_refused(self, sent: Sent) -> None:
        with refusal("Ongeldig: Klant (Type)"):
            sent.naive(101, SALES, sales_entry(Customer="1031"), entry_lines())

    def test_ours_names_account_name_and_status(self, sent: Sent) -> None:
        failed = sent.refused(101, SALES, sales_entry(Customer="1031"), entry_lines())
        assert failed.check == "customer"
        assert failed.values == {"field": "Customer", "account": "1031", "name": "Prospect BV", "status": "P"}
        assert "account 1031 (Prospect BV) is not a customer (Status P)" in str(failed)

    @pytest.mark.parametrize(
        ("name", "fields"),
        [
            pytest.param("SalesInvoice", {"InvoiceTo": "1001", "OrderedBy": "1031"}, id="invoice-ordered-by"),
            pytest.param("SalesOrder", {"OrderedBy": "1031"}, id="order"),
        ],
    )
    def test_invoices_and_orders_need_a_customer_too(self, sent: Sent, name: str, fields: dict[str, Any]) -> None:
        with refusal("Ongeldig: Klant (Type)"):
            sent.naive(101, SPECS[name], fields, [])
        assert sent.refused(101, SPECS[name], fields, []).values["account"] == "1031"


class TestSupplier:
    def test_naive_purchase_entry_from_a_customer_is_refused(self, sent: Sent) -> None:
        with refusal("Ongeldig: Leverancier (type)"):
            sent.naive(101, PURCHASE, purchase_entry(Supplier="1001"), entry_lines())

    def test_ours_names_the_account(self, sent: Sent) -> None:
        failed = sent.refused(101, PURCHASE, purchase_entry(Supplier="1001"), entry_lines())
        assert (failed.check, failed.values["account"], failed.values["is_supplier"]) == ("supplier", "1001", False)
        assert re.fullmatch(r"Supplier: account 1001 \(.+\) is not a supplier \(IsSupplier false\)", str(failed))

    @pytest.mark.parametrize("name", ["PurchaseOrder", "PurchaseInvoice", "GoodsReceipt"])
    def test_orders_invoices_and_receipts_need_a_supplier_too(self, sent: Sent, name: str) -> None:
        with refusal("Ongeldig: Leverancier (type)"):
            sent.naive(101, SPECS[name], {"Supplier": "1031"}, [])
        failed = sent.refused(101, SPECS[name], {"Supplier": "1031"}, [])
        assert (failed.check, failed.values["name"]) == ("supplier", "Prospect BV")


class TestGlType:
    def test_naive_line_on_accounts_receivable_is_refused(self, sent: Sent) -> None:
        with refusal("Ledger account 1300 is of a wrong type"):
            sent.naive(101, SALES, sales_entry(), entry_lines(gl="1300"))

    def test_ours_names_account_and_type(self, sent: Sent) -> None:
        failed = sent.refused(101, SALES, sales_entry(), entry_lines(gl="1300"))
        assert (failed.check, failed.values) == ("gl_type", {"line": 1, "gl_account": "1300", "type": 20})
        assert str(failed) == (
            "line 1: GL account 1300 is of type 20 (accounts receivable), which an entry line cannot book to"
        )

    def test_a_journal_entry_line_on_vat_payable_is_refused_too(self, sent: Sent) -> None:
        lines = gje_lines("2026-03-10", 10.0, -10.0, gl=("7000", "1500"))
        with refusal("Ledger account 1500 is of a wrong type"):
            sent.naive(101, GJE, {"JournalCode": "90"}, lines)
        failed = sent.refused(101, GJE, {"JournalCode": "90"}, lines)
        assert failed.values == {"line": 2, "gl_account": "1500", "type": 24}


class TestJournalVat:
    def test_naive_vat_code_on_a_journal_without_vat_is_refused(self, sent: Sent) -> None:
        with refusal("Niet toegestaan: Btw-code"):
            sent.naive(101, GJE, {"JournalCode": "90"}, gje_lines("2026-03-10", 10.0, -10.0, VATCode="2"))

    def test_ours_names_vat_code_and_journal(self, sent: Sent) -> None:
        failed = sent.refused(101, GJE, {"JournalCode": "90"}, gje_lines("2026-03-10", 10.0, -10.0, VATCode="2"))
        assert (failed.check, failed.values) == ("journal_vat", {"line": 1, "vat_code": "2", "journal": "90"})
        assert "VAT code 2 on journal 90 (Memoriaal), which takes no VAT" in str(failed)

    def test_a_journal_with_vat_takes_it(self, sent: Sent) -> None:
        sent.passes(101, GJE, {"JournalCode": "91"}, gje_lines("2026-03-10", 10.0, -10.0, VATCode="2"))


class TestPaymentCondition:
    def test_naive_entry_without_one_for_a_customer_without_a_default_is_refused(self, sent: Sent) -> None:
        with refusal("Verplicht: Betalingsconditie"):
            sent.naive(101, SALES, sales_entry(Customer="1032", PaymentCondition=None), entry_lines())

    def test_ours_names_the_customer(self, sent: Sent) -> None:
        failed = sent.refused(101, SALES, sales_entry(Customer="1032", PaymentCondition=None), entry_lines())
        assert failed.check == "payment_condition"
        assert failed.values == {"field": "PaymentCondition", "account": "1032", "name": "Zonder Conditie BV"}

    def test_a_condition_given_or_a_customer_default_passes(self, sent: Sent) -> None:
        sent.passes(101, SALES, sales_entry(Customer="1032"), entry_lines())
        sent.passes(101, SALES, sales_entry(PaymentCondition=None), entry_lines())
        sent.passes(101, SPECS["SalesInvoice"], {"InvoiceTo": "1001", "InvoiceDate": "2026-03-10"}, [])


class TestEntryNumber:
    def test_naive_retry_with_a_used_number_is_refused(self, sent: Sent) -> None:
        sent.naive(101, SALES, sales_entry(EntryNumber=32500), entry_lines())
        with refusal("In gebruik: Boekstuknummer"):
            sent.naive(101, SALES, sales_entry(EntryNumber=32500), entry_lines())

    def test_ours_finds_the_number_taken_in_that_journal(self, sent: Sent) -> None:
        sent.passes(101, SALES, sales_entry(EntryNumber=32501), entry_lines())
        sent.naive(101, SALES, sales_entry(EntryNumber=32501), entry_lines())
        failed = sent.refused(101, SALES, sales_entry(EntryNumber=32501), entry_lines())
        assert (failed.check, failed.values) == ("entry_number", {"entry_number": 32501, "journal": "70"})
        assert str(failed) == "entry number 32501 is already used in journal 70"

    def test_a_journal_entry_number_is_checked_in_its_journal(self, sent: Sent) -> None:
        sent.naive(101, GJE, {"JournalCode": "90", "EntryNumber": 90500}, gje_lines("2026-03-10", 1.0, -1.0))
        failed = sent.refused(101, GJE, {"JournalCode": "90", "EntryNumber": 90500}, gje_lines("2026-03-10", 1.0, -1.0))
        assert failed.check == "entry_number"
        sent.passes(101, GJE, {"JournalCode": "91", "EntryNumber": 90500}, gje_lines("2026-03-10", 1.0, -1.0))


class TestOpenQuantity:
    def test_naive_delivery_over_the_open_quantity_is_booked(self, sent: Sent, client: ExactClient) -> None:
        _, line = open_line(client, 101, "SalesOrder", "OPEN-SO-1")
        sent.naive(101, SPECS["GoodsDelivery"], {}, [{"SalesOrderLineID": line["ID"], "QuantityDelivered": 8}])
        _, after = open_line(client, 101, "SalesOrder", "OPEN-SO-1")
        assert (after["Quantity"], after["QuantityDelivered"]) == (10, 12)  # two more delivered than ordered

    def test_ours_names_quantity_and_what_is_open(self, sent: Sent, client: ExactClient) -> None:
        _, line = open_line(client, 101, "SalesOrder", "OPEN-SO-1")
        lines = [{"SalesOrderLineID": line["ID"], "QuantityDelivered": 8}]
        failed = sent.refused(101, SPECS["GoodsDelivery"], {}, lines)
        key = str(line["ID"]).lower()
        assert (failed.check, failed.values) == (
            "open_quantity",
            {"lines": [1], "order_line": key, "quantity": 8, "open": 6},
        )
        assert str(failed) == f"line 1: quantity 8 over the 6 open on sales order line {key}"

    def test_lines_against_one_order_line_add_up(self, sent: Sent, client: ExactClient) -> None:
        _, line = open_line(client, 101, "SalesOrder", "OPEN-SO-1")
        lines = [{"SalesOrderLineID": line["ID"], "QuantityDelivered": q} for q in (4, 2.5)]
        assert sent.refused(101, SPECS["GoodsDelivery"], {}, lines).values["lines"] == [1, 2]
        sent.passes(101, SPECS["GoodsDelivery"], {}, lines[:1])

    def test_a_receipt_over_the_open_purchase_quantity(self, sent: Sent, client: ExactClient) -> None:
        order, line = open_line(client, 101, "PurchaseOrder", "OPEN-PO-1")
        supplier = first(client, 101, CATALOGUE.references["account"].path, f"ID eq {guid_literal(order['Supplier'])}")
        header, spec = {"Supplier": supplier["Code"]}, SPECS["GoodsReceipt"]
        over = [{"PurchaseOrderLineID": line["ID"], "QuantityReceived": 8}]
        failed = sent.refused(101, spec, header, over)
        assert (failed.values["quantity"], failed.values["open"]) == (8, 7)
        sent.passes(101, spec, header, [{"PurchaseOrderLineID": line["ID"], "QuantityReceived": 7}])
        sent.naive(101, spec, header, [{"PurchaseOrderLineID": line["ID"], "QuantityReceived": 7}])
        # Read afresh, not from a cache: what the receipt took is no longer open.
        assert sent.refused(101, spec, header, [{**over[0], "QuantityReceived": 1}]).values["open"] == 0


class TestPassing:
    """A write each check lets through makes no write call, and Exact (the sandbox) then takes it."""

    @pytest.mark.parametrize(
        ("name", "fields", "lines"),
        [
            pytest.param("GeneralJournalEntry", {"JournalCode": "90"}, gje_lines("2026-03-10", 1, -1), id="gje"),
            pytest.param("SalesEntry", sales_entry(Type=21), entry_lines(), id="sales-credit-note"),
            pytest.param("PurchaseEntry", purchase_entry(), entry_lines(gl="7000"), id="purchase-entry"),
            pytest.param(
                "SalesInvoice",
                {"InvoiceTo": "1001", "InvoiceDate": "2026-03-10", "Journal": "70", "Type": 8021},
                [{"Item": "ITEM-001", "Quantity": 1}],
                id="sales-credit-invoice",
            ),
            pytest.param("SalesOrder", {"OrderedBy": "1001"}, [{"Item": "ITEM-001", "Quantity": 1}], id="order"),
            pytest.param("PurchaseOrder", {"Supplier": "1003"}, [{"Item": "ITEM-001", "Quantity": 1}], id="po"),
            pytest.param(
                "PurchaseInvoice",
                {"Supplier": "1003", "InvoiceDate": "2026-04-01", "Journal": "60"},
                [{"Item": "ITEM-001", "Quantity": 1}],
                id="purchase-invoice",
            ),
            pytest.param("StockCount", {"Warehouse": "1"}, [{"Item": "ITEM-001", "QuantityNew": 3}], id="count"),
        ],
    )
    def test_a_good_write_passes_and_is_taken(
        self, sent: Sent, name: str, fields: dict[str, Any], lines: Lines
    ) -> None:
        sent.passes(101, SPECS[name], fields, lines)
        assert sent.naive(101, SPECS[name], fields, lines)

    def test_a_delivery_within_the_open_quantity(self, sent: Sent, client: ExactClient) -> None:
        _, line = open_line(client, 202, "SalesOrder", "OPEN-SO-1")
        sent.passes(202, SPECS["GoodsDelivery"], {}, [{"SalesOrderLineID": line["ID"], "QuantityDelivered": 6}])

    def test_specs_without_checks_pass_without_a_call(self, sent: Sent, sandbox: ServerThread) -> None:
        for name in ("Account", "TimeTransaction", "StockCount"):
            assert SPECS[name].checks == ()
        calls = httpx.get(f"{sandbox.url}/_sandbox/calls").json()["total"]
        sent.preflight.check(101, SPECS["Account"], {"Code": "9999", "Name": "Nieuw"}, None)
        assert httpx.get(f"{sandbox.url}/_sandbox/calls").json()["total"] == calls


class TestCaching:
    def test_what_does_not_change_with_a_write_is_read_once_per_ttl(
        self, client: ExactClient, references: References, sent: Sent, sandbox: ServerThread
    ) -> None:
        def gets(path: str) -> int:
            params = {"endpoint": path, "division": 101, "method": "GET"}
            return int(httpx.get(f"{sandbox.url}/_sandbox/calls", params=params).json()["total"])

        # References resolve the codes once (cached apart); the counts below are the checks' own reads.
        paths = [CATALOGUE.lookups[n].path for n in ("journal", "financial_period", "journal_status", "gl_account")]
        lines = gje_lines("2026-03-10", 1.0, -1.0, VATCode="2")
        sent.body(101, GJE, {"JournalCode": "91"}, lines)
        now = [0.0]
        sent.preflight = Preflight(client, references, ttl=300, clock=lambda: now[0])
        before = [gets(p) for p in paths]
        for _ in range(3):
            sent.passes(101, GJE, {"JournalCode": "91"}, lines)
        once = [gets(p) - b for p, b in zip(paths, before, strict=True)]
        assert once == [1, 1, 1, 2]  # two GL accounts, one query each; both lines in one period
        now[0] = 301.0
        sent.passes(101, GJE, {"JournalCode": "91"}, lines)
        assert [gets(p) - b for p, b in zip(paths, before, strict=True)] == [2, 2, 2, 4]
