"""Natural keys: one VAT or KvK number in every spelling people type, and the division's records found by it through
the sandbox (seeded: 1002 "NL 8123.45.678.B01" / KvK "12.34.56.78", 1005 "NL001234567B02", 1007 and 1008 sharing
"NL999999999B01"), at one call per lookup once the division is indexed."""

from __future__ import annotations

from typing import Any

import pytest

from exact import (
    SPECS,
    ExactClient,
    Matcher,
    MatchIndex,
    Query,
    References,
    Writer,
    account_code,
    normalise,
    string_literal,
)
from sandbox.entities import ACCOUNTS
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected

ACCOUNT = SPECS["Account"]
SYNC = "sync/CRM/Accounts"


@pytest.mark.parametrize(
    ("field", "value", "normalised"),
    [
        pytest.param("VATNumber", "NL 8123.45.678.B01", "812345678b01", id="vat-spaces-dots"),
        pytest.param("VATNumber", "nl812345678b01", "812345678b01", id="vat-lower"),
        pytest.param("VATNumber", "812345678B01", "812345678b01", id="vat-no-prefix"),
        pytest.param("VATNumber", "  NL-8123-45-678-B01 ", "812345678b01", id="vat-dashes"),
        pytest.param("VATNumber", "BE 0123.456.789", "be0123456789", id="vat-other-country-keeps-prefix"),
        pytest.param("VATNumber", "", "", id="vat-empty"),
        pytest.param("VATNumber", None, "", id="vat-none"),
        pytest.param("ChamberOfCommerce", "12.34.56.78", "12345678", id="kvk-dots"),
        pytest.param("ChamberOfCommerce", " 12 34-56 78 ", "12345678", id="kvk-spaces-dashes"),
        pytest.param("Code", "1001", account_code("1001"), id="code-padded"),
        pytest.param("Code", "  1001 ", account_code("1001"), id="code-trimmed"),
        pytest.param("YourRef", "  Order \t 42 ", "order 42", id="yourref-trim-collapse-fold"),
        pytest.param("YourRef", "ORDER 42", "order 42", id="yourref-case"),
        pytest.param("YourRef", "Order.42", "order.42", id="yourref-keeps-dots"),
    ],
)
def test_normalise(field: str, value: Any, normalised: str) -> None:
    assert normalise(field, value) == normalised


@pytest.fixture
def client(connected: Connected) -> ExactClient:
    return connected.client()


@pytest.fixture
def matcher(client: ExactClient) -> Matcher:
    return Matcher(client, MatchIndex())


def account_id(client: ExactClient, division: int, code: str) -> str:
    flt = f"Code eq {string_literal(account_code(code))}"
    return str(next(client.iter_records(division, ACCOUNT.path, Query(filter=flt)))["ID"]).lower()


def calls(sandbox: ServerThread, endpoint: str) -> int:
    return int(sandbox.state.counters.total(endpoint=endpoint))  # type: ignore[attr-defined]


class TestCandidates:
    @pytest.mark.parametrize("spelling", ["NL 8123.45.678.B01", "nl812345678b01", "812345678B01"])
    def test_a_vat_number_written_otherwise_finds_the_account(
        self, matcher: Matcher, client: ExactClient, spelling: str
    ) -> None:
        [found] = matcher.find(101, ACCOUNT, "VATNumber", spelling)
        assert found.key == account_id(client, 101, "1002")
        assert str(found.label).strip() == "1002"

    def test_a_kvk_number_written_otherwise_finds_the_account(self, matcher: Matcher, client: ExactClient) -> None:
        [found] = matcher.find(101, ACCOUNT, "ChamberOfCommerce", "12 34 56 78")
        assert found.key == account_id(client, 101, "1002")

    def test_a_shared_vat_number_finds_both(self, matcher: Matcher) -> None:
        found = matcher.find(101, ACCOUNT, "VATNumber", "nl 999999999 b01")
        assert sorted(str(c.label).strip() for c in found) == ["1007", "1008"]

    def test_a_code_is_matched_as_exact_pads_it(self, matcher: Matcher, client: ExactClient) -> None:
        [found] = matcher.find(101, ACCOUNT, "Code", " 1005 ")
        assert found.key == account_id(client, 101, "1005")

    def test_an_unknown_number_and_an_empty_one_match_nothing(self, matcher: Matcher) -> None:
        assert matcher.find(101, ACCOUNT, "VATNumber", "NL000000000B00") == []
        assert matcher.find(101, ACCOUNT, "VATNumber", "  ") == []

    def test_each_division_has_its_own_records(self, matcher: Matcher, client: ExactClient) -> None:
        [in_101] = matcher.find(101, ACCOUNT, "VATNumber", "NL812345678B01")
        [in_202] = matcher.find(202, ACCOUNT, "VATNumber", "NL812345678B01")
        assert (in_101.key, in_202.key) == (account_id(client, 101, "1002"), account_id(client, 202, "1002"))

    def test_every_field_must_match_for_find_all_and_one_for_find_any(self, matcher: Matcher) -> None:
        both = {"VATNumber": "NL812345678B01", "ChamberOfCommerce": "87654321"}  # 1002's VAT, 1005's KvK
        assert matcher.find_all(101, ACCOUNT, both) == []
        assert sorted(str(c.label).strip() for c in matcher.find_any(101, ACCOUNT, both)) == ["1002", "1005"]


class TestIndex:
    def test_once_indexed_a_lookup_costs_one_call_and_sees_changes(
        self, matcher: Matcher, client: ExactClient, sandbox: ServerThread
    ) -> None:
        matcher.find(101, ACCOUNT, "VATNumber", "NL000000000B00")  # the division is read once
        before = calls(sandbox, SYNC), calls(sandbox, ACCOUNT.path)
        assert matcher.find(101, ACCOUNT, "VATNumber", "NL000000000B00") == []
        assert (calls(sandbox, SYNC), calls(sandbox, ACCOUNT.path)) == (before[0] + 1, before[1])

        key = account_id(client, 101, "1005")
        Writer(client, References(client)).update(101, ACCOUNT, key, {"VATNumber": "NL 0000.00000.B00"})
        [found] = matcher.find(101, ACCOUNT, "VATNumber", "NL000000000B00")
        assert found.key == key
        assert matcher.find(101, ACCOUNT, "VATNumber", "NL001234567B02") == []  # its old number is gone

    def test_a_deleted_account_the_index_still_holds_is_not_a_candidate(
        self, matcher: Matcher, client: ExactClient, sandbox: ServerThread
    ) -> None:
        key = account_id(client, 101, "1002")
        assert [c.key for c in matcher.find(101, ACCOUNT, "VATNumber", "812345678B01")] == [key]
        sandbox.state.store.delete(101, ACCOUNTS, key)  # type: ignore[attr-defined]
        assert matcher.find(101, ACCOUNT, "VATNumber", "812345678B01") == []
