"""Safe writes against the sandbox: for each of gotchas 1–6 the naive write loses data silently, ours does not.

Each test first does what a hurried integration does (the plain client: POST or PUT, trust the 2xx) and shows the
loss on read-back; then does the same through `Writer` and shows it refused before sending, or verified.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from exact import (
    SPECS,
    ExactClient,
    Query,
    References,
    UnknownReference,
    WriteNotVerified,
    WriteOutcomeUnknown,
    Writer,
    string_literal,
)
from sandbox.entities import ACCOUNTS, GL_ACCOUNTS, SALES_INVOICES
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected
from tests.pipeline.push_support import await_true

INVOICE, ORDER = SPECS["SalesInvoice"], SPECS["PurchaseOrder"]
ACCOUNT, TIME = SPECS["Account"], SPECS["TimeTransaction"]


@pytest.fixture
def client(connected: Connected) -> ExactClient:
    return connected.client()


@pytest.fixture
def writer(client: ExactClient) -> Writer:
    return Writer(client, References(client))


def one(client: ExactClient, division: int, path: str, flt: str) -> dict[str, Any]:
    return next(client.iter_records(division, path, Query(filter=flt)))


def code_id(client: ExactClient, division: int, path: str, code: str) -> str:
    return str(one(client, division, path, f"Code eq {string_literal(code)}")["ID"])


def read_line(client: ExactClient, division: int, path: str, key: str, lines: str) -> dict[str, Any]:
    record = client.get(division, f"{path}(guid'{key}')", Query(expand=lines))
    return dict(record[lines]["results"][0])


def writes(sandbox: ServerThread, path: str) -> int:
    """POSTs (201) and PUTs (204) the sandbox took on `path`."""
    counters = sandbox.state.counters  # type: ignore[attr-defined]
    return int(counters.total(endpoint=path, status=201) + counters.total(endpoint=path, status=204))


def customer(client: ExactClient, division: int) -> str:
    return str(one(client, division, "crm/Accounts", "Code eq '              1001'")["ID"])


class TestGotcha1GlAccountOfAnotherDivision:
    def test_naive_write_links_nothing_and_answers_201(self, client: ExactClient) -> None:
        gl_202 = code_id(client, 202, "financial/GLAccounts", "8000")
        body = {
            "InvoiceTo": customer(client, 101),
            "Currency": "EUR",
            "SalesInvoiceLines": [{"GLAccount": gl_202, "Quantity": 1, "UnitPrice": 10.0}],
        }
        created = client.create(101, INVOICE.path, body)
        assert created[INVOICE.key]
        assert read_line(client, 101, INVOICE.path, created[INVOICE.key], "SalesInvoiceLines")["GLAccount"] is None

    def test_ours_resolves_the_code_in_the_target_division(self, writer: Writer, client: ExactClient) -> None:
        result = writer.create(
            101,
            INVOICE,
            {"InvoiceTo": "1001", "Currency": "EUR"},
            [{"GLAccount": "8000", "Quantity": 1, "UnitPrice": 10.0}],
        )
        assert result.lines is not None
        assert result.lines[0]["GLAccount"] == code_id(client, 101, "financial/GLAccounts", "8000")

    def test_ours_refuses_a_guid_of_another_division_before_sending(
        self, writer: Writer, client: ExactClient, sandbox: ServerThread
    ) -> None:
        gl_202 = code_id(client, 202, "financial/GLAccounts", "8000")
        with pytest.raises(UnknownReference) as caught:
            writer.create(101, INVOICE, {"InvoiceTo": "1001"}, [{"GLAccount": gl_202, "Quantity": 1}])
        assert (caught.value.field, caught.value.division) == ("SalesInvoiceLines[1].GLAccount", 101)
        assert gl_202 in str(caught.value)
        assert "division 101" in str(caught.value)
        assert writes(sandbox, INVOICE.path) == 0


class TestGotcha2UnknownVatCode:
    def test_naive_write_gets_the_division_default(self, client: ExactClient) -> None:
        body = {"InvoiceTo": customer(client, 202), "SalesInvoiceLines": [{"VATCode": "1", "Quantity": 1}]}
        created = client.create(202, INVOICE.path, body)
        assert read_line(client, 202, INVOICE.path, created[INVOICE.key], "SalesInvoiceLines")["VATCode"] == "2"

    def test_ours_refuses_it_naming_code_and_division(self, writer: Writer, sandbox: ServerThread) -> None:
        with pytest.raises(UnknownReference, match=r"VATCode: '1' is not in vat/VATCodes of division 202"):
            writer.create(202, INVOICE, {"InvoiceTo": "1001"}, [{"VATCode": "1", "Quantity": 1}])
        assert writes(sandbox, INVOICE.path) == 0

    def test_ours_writes_a_code_the_division_has(self, writer: Writer) -> None:
        result = writer.create(101, INVOICE, {"InvoiceTo": "1001"}, [{"VATCode": "1", "Quantity": 1}])
        assert result.lines is not None
        assert result.lines[0]["VATCode"] == "1"


class TestGotcha3UnsupportedCurrency:
    def test_naive_write_becomes_the_division_currency(self, client: ExactClient) -> None:
        created = client.create(202, INVOICE.path, {"InvoiceTo": customer(client, 202), "Currency": "USD"})
        assert client.get_by_key(202, INVOICE.path, created[INVOICE.key])["Currency"] == "EUR"

    def test_ours_refuses_it_before_sending(self, writer: Writer, sandbox: ServerThread) -> None:
        with pytest.raises(UnknownReference, match=r"Currency: 'USD' is not in general/Currencies of division 202"):
            writer.create(202, INVOICE, {"InvoiceTo": "1001", "Currency": "USD"})
        assert writes(sandbox, INVOICE.path) == 0

    def test_ours_writes_it_where_it_is_enabled(self, writer: Writer) -> None:
        assert writer.create(101, INVOICE, {"InvoiceTo": "1001", "Currency": "USD"}).verified["Currency"] == "USD"


class TestGotcha4PutIsAFullReplace:
    def test_naive_partial_put_blanks_every_field_it_left_out(self, client: ExactClient) -> None:
        key = customer(client, 101)
        before = client.get_by_key(101, ACCOUNT.path, key)
        client.update(101, ACCOUNT.path, key, {"Name": "Renamed"})
        after = client.get_by_key(101, ACCOUNT.path, key)
        assert before["Email"]
        assert before["City"]
        assert (after["Name"], after["Email"], after["City"]) == ("Renamed", None, None)

    def test_ours_gets_changes_and_puts_the_whole_record(self, writer: Writer, client: ExactClient) -> None:
        key = customer(client, 101)
        before = client.get_by_key(101, ACCOUNT.path, key)
        result = writer.update(101, ACCOUNT, key, {"Name": "Renamed"})
        after = client.get_by_key(101, ACCOUNT.path, key)
        assert after["Name"] == "Renamed"
        kept = {k: before[k] for k in ("Code", "Email", "City", "Country", "Phone", "VATNumber", "IsSupplier")}
        assert {k: after[k] for k in kept} == kept
        assert result.verified["Email"] == before["Email"]

    def test_ours_keeps_lines_and_dates_on_a_header_update(self, writer: Writer, client: ExactClient) -> None:
        created = writer.create(
            101,
            ORDER,
            {"Supplier": "1003", "OrderDate": "2026-03-04"},
            [{"Item": "ITEM-001", "Quantity": 3, "UnitPrice": 2.0}],
        )
        writer.update(101, ORDER, created.key, {"Description": "changed"})
        record = client.get(101, f"{ORDER.path}(guid'{created.key}')", Query(expand="PurchaseOrderLines"))
        assert record["Description"] == "changed"
        assert record["OrderDate"] == created.verified["OrderDate"]
        assert [line["QuantityOrdered"] for line in record["PurchaseOrderLines"]["results"]] == [3]


class TestGotcha5QuantityReadsBackAsQuantityOrdered:
    def test_naive_key_for_key_check_never_sees_the_quantity(self, client: ExactClient) -> None:
        supplier = str(one(client, 101, "crm/Accounts", "IsSupplier eq true")["ID"])
        sent = {"Quantity": 7, "UnitPrice": 2.5}
        created = client.create(101, ORDER.path, {"Supplier": supplier, "PurchaseOrderLines": [sent]})
        line = read_line(client, 101, ORDER.path, created[ORDER.key], "PurchaseOrderLines")
        # Comparing the keys both sides share passes, and says nothing about the quantity.
        assert all(line[k] == v for k, v in sent.items() if k in line)
        assert "Quantity" not in line

    def test_ours_compares_quantity_with_quantity_ordered(self, writer: Writer) -> None:
        result = writer.create(101, ORDER, {"Supplier": "1003"}, [{"Item": "ITEM-002", "Quantity": 7}])
        assert result.lines is not None
        assert result.lines[0]["QuantityOrdered"] == 7

    def test_without_the_map_the_read_back_is_a_mismatch_not_a_pass(self, writer: Writer) -> None:
        assert ORDER.lines is not None
        unmapped = replace(ORDER, lines=replace(ORDER.lines, read_names={}))
        with pytest.raises(WriteNotVerified, match=r"PurchaseOrderLines\[1\]\.Quantity: wrote 7, read back '<absent>'"):
            writer.create(101, unmapped, {"Supplier": "1003"}, [{"Quantity": 7}])


class TestGotcha6ItemTakesAGuid:
    def test_naive_code_is_refused_and_another_divisions_guid_is_a_phantom(self, client: ExactClient) -> None:
        from exact import ValidationError

        with pytest.raises(ValidationError):
            client.create(101, INVOICE.path, {"SalesInvoiceLines": [{"Item": "ITEM-001"}]})
        item_202 = code_id(client, 202, "logistics/Items", "ITEM-001")
        body = {"InvoiceTo": customer(client, 101), "SalesInvoiceLines": [{"Item": item_202, "Quantity": 1}]}
        created = client.create(101, INVOICE.path, body)
        assert read_line(client, 101, INVOICE.path, created[INVOICE.key], "SalesInvoiceLines")["Item"] is None

    def test_ours_resolves_the_code_to_this_divisions_guid(self, writer: Writer, client: ExactClient) -> None:
        result = writer.create(101, INVOICE, {"InvoiceTo": "1001"}, [{"Item": "ITEM-001", "Quantity": 1}])
        assert result.lines is not None
        assert result.lines[0]["Item"] == code_id(client, 101, "logistics/Items", "ITEM-001")

    def test_ours_refuses_an_item_code_the_division_lacks(self, writer: Writer, sandbox: ServerThread) -> None:
        with pytest.raises(UnknownReference, match="ITEM-999"):
            writer.create(101, TIME, {"Account": "1001", "Item": "ITEM-999", "Quantity": 1.5})
        assert writes(sandbox, TIME.path) == 0


class TestReadBack:
    def test_a_reference_gone_after_it_was_cached_is_reported_with_both_values(
        self, writer: Writer, client: ExactClient, sandbox: ServerThread
    ) -> None:
        gl = code_id(client, 101, "financial/GLAccounts", "4000")
        writer.create(101, INVOICE, {"InvoiceTo": "1001"}, [{"GLAccount": "4000", "Quantity": 1}])
        sandbox.state.store.delete(101, GL_ACCOUNTS, gl)  # type: ignore[attr-defined]
        with pytest.raises(WriteNotVerified) as caught:
            writer.create(101, INVOICE, {"InvoiceTo": "1001"}, [{"GLAccount": "4000", "Quantity": 2}])
        [mismatch] = caught.value.mismatches
        assert (mismatch.field, mismatch.written, mismatch.read) == ("SalesInvoiceLines[1].GLAccount", gl, None)
        assert caught.value.key
        assert f"wrote '{gl}', read back None" in str(caught.value)

    def test_time_transactions_and_accounts_verify_every_written_field(self, writer: Writer) -> None:
        account = writer.create(101, ACCOUNT, {"Code": "7777", "Name": "New Co", "Email": "a@b.nl", "Status": "C"})
        assert account.verified["Code"] == "7777".rjust(18)
        hours = writer.create(
            101,
            TIME,
            {"Account": "7777", "Item": "ITEM-003", "Quantity": 7.5, "Date": "2026-11-20", "Notes": "install"},
        )
        assert hours.verified["Account"] == account.key
        assert hours.verified["Quantity"] == 7.5

    def test_references_are_cached_per_division(self, writer: Writer, sandbox: ServerThread) -> None:
        counters = sandbox.state.counters  # type: ignore[attr-defined]
        for _ in range(3):
            writer.create(101, INVOICE, {"InvoiceTo": "1001"}, [{"Item": "ITEM-001", "Quantity": 1}])
        writer.create(202, INVOICE, {"InvoiceTo": "1001"}, [{"Item": "ITEM-001", "Quantity": 1}])
        assert counters.total(endpoint="logistics/Items", division=101) == 1
        assert counters.total(endpoint="logistics/Items", division=202) == 1


class TestCreatesAreNeverSentTwice:
    """A create that got no answer may have landed; sending it again would book the invoice twice."""

    @pytest.mark.parametrize("kind", ["error", "timeout"])
    def test_a_5xx_or_gateway_timeout_is_unknown_and_not_retried(
        self, writer: Writer, sandbox: ServerThread, kind: str
    ) -> None:
        fault = {"kind": kind, "endpoint": INVOICE.path, "count": 1, "delay": 0.1}
        assert httpx.post(f"{sandbox.url}/_sandbox/faults", json=fault).status_code < 300
        with pytest.raises(WriteOutcomeUnknown, match="it may have landed"):
            writer.create(101, INVOICE, {"InvoiceTo": "1001"}, [{"Item": "ITEM-001", "Quantity": 1}])
        counters = sandbox.state.counters  # type: ignore[attr-defined]
        assert counters.total(endpoint=INVOICE.path) == 1

    def test_a_client_timeout_while_exact_still_writes_creates_exactly_one(
        self, connected: Connected, sandbox: ServerThread
    ) -> None:
        client = connected.client(timeout=0.5)
        writer = Writer(client, References(client))
        writer.create(101, INVOICE, {"InvoiceTo": "1001", "YourRef": "warm-up"})  # references cached
        slow = {"kind": "slow", "endpoint": INVOICE.path, "count": 1, "delay": 1.5}
        assert httpx.post(f"{sandbox.url}/_sandbox/faults", json=slow).status_code < 300
        with pytest.raises(WriteOutcomeUnknown):
            writer.create(101, INVOICE, {"InvoiceTo": "1001", "YourRef": "slow-one"})
        counters, store = sandbox.state.counters, sandbox.state.store  # type: ignore[attr-defined]
        # The slow call is counted once Exact (the sandbox) answered it; a retry, sent before the error, came first.
        await_true(lambda: counters.total(endpoint=INVOICE.path, status=201) >= 2, timeout=30, what="the slow create")
        assert counters.total(endpoint=INVOICE.path, status=201) == 2
        assert [r["YourRef"] for r in store.rows(101, SALES_INVOICES)].count("slow-one") == 1


class TestLostAnswersAreSettled:
    """A create whose answer is lost is looked up by its marker (or YourRef): found, it succeeded; surely absent
    (Exact itself answered 500, the lookup found nothing), it is sent once more; otherwise it stays unknown."""

    def posts(self, sandbox: ServerThread, path: str) -> int:
        return int(sandbox.state.counters.total(endpoint=path, method="POST"))  # type: ignore[attr-defined]

    def named(self, sandbox: ServerThread, name: str) -> list[dict[str, Any]]:
        return [r for r in sandbox.state.store.rows(101, ACCOUNTS) if r.get("Name") == name]  # type: ignore[attr-defined]

    def test_a_dropped_answer_is_found_by_the_marker_and_verified(self, writer: Writer, sandbox: ServerThread) -> None:
        arm(sandbox, kind="drop", endpoint=ACCOUNT.path, count=1)
        result = writer.create(101, ACCOUNT, {"Code": "8801", "Name": "Dropped Co"}, marker="exact-pipeline:t-8801")
        [created] = self.named(sandbox, "Dropped Co")
        assert (result.key, result.found_by, result.action) == (created["ID"], ACCOUNT.marker, "create")
        assert created[str(ACCOUNT.marker)] == "exact-pipeline:t-8801"
        assert self.posts(sandbox, ACCOUNT.path) == 1

    def test_a_dropped_answer_is_found_by_yourref(self, writer: Writer, sandbox: ServerThread) -> None:
        arm(sandbox, kind="drop", endpoint=INVOICE.path, count=1)
        fields = {"InvoiceTo": "1001", "YourRef": "dropped-ref-1"}
        result = writer.create(101, INVOICE, fields, [{"Item": "ITEM-001", "Quantity": 2}], marker="exact-pipeline:x")
        [created] = [r for r in sandbox.state.store.rows(101, SALES_INVOICES) if r.get("YourRef") == "dropped-ref-1"]  # type: ignore[attr-defined]
        assert (result.key, result.found_by) == (created["InvoiceID"], "YourRef")
        assert not created.get("Remarks")  # YourRef finds it: no marker stamped
        assert self.posts(sandbox, INVOICE.path) == 1

    def test_a_500_that_wrote_nothing_is_sent_once_more(self, writer: Writer, sandbox: ServerThread) -> None:
        arm(sandbox, kind="error", endpoint=ACCOUNT.path, count=1)
        result = writer.create(101, ACCOUNT, {"Code": "8802", "Name": "Resent Co"}, marker="exact-pipeline:t-8802")
        [created] = self.named(sandbox, "Resent Co")
        assert (result.key, result.found_by) == (created["ID"], None)
        assert self.posts(sandbox, ACCOUNT.path) == 2

    def test_only_once_more(self, writer: Writer, sandbox: ServerThread) -> None:
        arm(sandbox, kind="error", endpoint=ACCOUNT.path, method="POST", count=2)
        with pytest.raises(WriteOutcomeUnknown, match="not found by Remarks"):
            writer.create(101, ACCOUNT, {"Code": "8803", "Name": "Twice Co"}, marker="exact-pipeline:t-8803")
        assert self.posts(sandbox, ACCOUNT.path) == 2
        assert self.named(sandbox, "Twice Co") == []

    def test_a_gateway_timeout_may_still_land_so_is_never_resent(self, writer: Writer, sandbox: ServerThread) -> None:
        arm(sandbox, kind="timeout", endpoint=ACCOUNT.path, count=1, delay=0.1)
        with pytest.raises(WriteOutcomeUnknown, match="it may have landed"):
            writer.create(101, ACCOUNT, {"Code": "8804", "Name": "Gateway Co"}, marker="exact-pipeline:t-8804")
        assert self.posts(sandbox, ACCOUNT.path) == 1

    def test_a_lookup_that_fails_too_leaves_it_unknown(self, writer: Writer, sandbox: ServerThread) -> None:
        arm(sandbox, kind="drop", endpoint=ACCOUNT.path, count=1)
        arm(sandbox, kind="error", endpoint=ACCOUNT.path, method="GET", count=10)  # the lookup's, retries and all
        with pytest.raises(WriteOutcomeUnknown, match="looking it up by Remarks failed too"):
            writer.create(101, ACCOUNT, {"Code": "8805", "Name": "Unseen Co"}, marker="exact-pipeline:t-8805")
        assert self.posts(sandbox, ACCOUNT.path) == 1
        assert len(self.named(sandbox, "Unseen Co")) == 1


def arm(sandbox: ServerThread, **fault: Any) -> None:
    assert httpx.post(f"{sandbox.url}/_sandbox/faults", json=fault).status_code < 300
