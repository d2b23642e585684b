"""The reference kinds of issue 18 resolved against the sandbox: codes to what Exact takes, GUID-only kinds held to
the division, misses named, hits cached."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from exact import CATALOGUE, SPECS, ExactClient, Kind, Query, References, UnknownReference, guid_literal, string_literal
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected


@pytest.fixture
def client(connected: Connected) -> ExactClient:
    return connected.client()


@pytest.fixture
def references(client: ExactClient) -> References:
    return References(client)


def first(client: ExactClient, division: int, path: str, flt: str) -> dict[str, Any]:
    return next(client.iter_records(division, path, Query(filter=flt)))


def by_code(client: ExactClient, division: int, kind: Kind, code: str) -> dict[str, Any]:
    spec = CATALOGUE.references[kind]
    return first(client, division, spec.path, f"{spec.match} eq {string_literal(code)}")


OPEN = {"SalesOrder": "OPEN-SO-1", "PurchaseOrder": "OPEN-PO-1"}  # the seeded orders with open quantities


def open_line(client: ExactClient, division: int, order: str, kind: Kind) -> str:
    """The ID of the one line of the seeded order with an open quantity."""
    spec = SPECS[order]
    header = first(client, division, spec.path, f"YourRef eq {string_literal(OPEN[order])}")
    line = first(client, division, CATALOGUE.references[kind].path, f"{spec.key} eq {guid_literal(header[spec.key])}")
    return str(line["ID"]).lower()


def gets(sandbox: ServerThread, path: str, division: int) -> int:
    params: dict[str, str | int] = {"endpoint": path, "division": division, "method": "GET"}
    return int(httpx.get(f"{sandbox.url}/_sandbox/calls", params=params).json()["total"])


class TestCodes:
    @pytest.mark.parametrize(
        ("kind", "code"),
        [
            pytest.param("journal", "70", id="journal"),
            pytest.param("payment_condition", "30", id="payment-condition"),
            pytest.param("cost_center", "100", id="cost-center"),
            pytest.param("cost_unit", "A", id="cost-unit"),
        ],
    )
    def test_a_code_kind_writes_the_code_the_division_has(self, references: References, kind: Kind, code: str) -> None:
        assert references.resolve(101, kind, f" {code} ", field="X") == code

    @pytest.mark.parametrize(
        ("kind", "code"),
        [pytest.param("employee", "1", id="employee"), pytest.param("warehouse", "1", id="warehouse")],
    )
    def test_a_code_resolves_to_this_divisions_guid(
        self, references: References, client: ExactClient, kind: Kind, code: str
    ) -> None:
        expected = str(by_code(client, 101, kind, code)["ID"]).lower()
        assert references.resolve(101, kind, code, field="X") == expected
        assert references.resolve(202, kind, code, field="X") != expected  # each division has its own record

    def test_a_project_code_resolves_to_its_guid(self, references: References, client: ExactClient) -> None:
        spec = CATALOGUE.references["project"]
        project = first(client, 101, spec.path, "Code ne ''")
        assert references.resolve(101, "project", project["Code"], field="Project") == str(project["ID"]).lower()

    @pytest.mark.parametrize(
        ("kind", "code", "path"),
        [
            pytest.param("journal", "99", "financial/Journals", id="journal"),
            pytest.param("payment_condition", "45", "cashflow/PaymentConditions", id="payment-condition"),
            pytest.param("employee", "77", "payroll/Employees", id="employee"),
            pytest.param("cost_unit", "Z", "hrm/Costunits", id="cost-unit"),
        ],
    )
    def test_a_code_the_division_lacks_is_named(self, references: References, kind: Kind, code: str, path: str) -> None:
        with pytest.raises(UnknownReference, match=f"Field: '{code}' is not in {path} of division 101"):
            references.resolve(101, kind, code, field="Field")

    def test_a_hit_is_cached_per_division(self, references: References, sandbox: ServerThread) -> None:
        path = CATALOGUE.references["journal"].path
        for _ in range(3):
            references.resolve(101, "journal", "90", field="JournalCode")
        references.resolve(202, "journal", "90", field="JournalCode")
        assert (gets(sandbox, path, 101), gets(sandbox, path, 202)) == (1, 1)


class TestGuidsOnly:
    @pytest.mark.parametrize(
        ("kind", "order"),
        [
            pytest.param("sales_order_line", "SalesOrder", id="sales-order-line"),
            pytest.param("purchase_order_line", "PurchaseOrder", id="purchase-order-line"),
        ],
    )
    def test_an_order_line_of_the_division_resolves_to_itself(
        self, references: References, client: ExactClient, kind: Kind, order: str
    ) -> None:
        line = open_line(client, 101, order, kind)
        assert references.resolve(101, kind, line.upper(), field="line") == line
        with pytest.raises(UnknownReference, match="division 202"):
            references.resolve(202, kind, line, field="line")

    def test_an_activity_of_another_division_or_by_name_is_unknown(
        self, references: References, client: ExactClient
    ) -> None:
        path = CATALOGUE.references["activity"].path
        activity = first(client, 101, path, "Description ne ''")
        assert references.resolve(101, "activity", activity["ID"], field="Activity") == str(activity["ID"]).lower()
        with pytest.raises(UnknownReference, match="division 202"):
            references.resolve(202, "activity", activity["ID"], field="Activity")
        with pytest.raises(UnknownReference, match=activity["Description"]):
            references.resolve(101, "activity", activity["Description"], field="Activity")

    def test_a_name_is_refused_without_asking_exact(self, references: References, sandbox: ServerThread) -> None:
        with pytest.raises(UnknownReference):
            references.resolve(101, "sales_order_line", "line 1", field="SalesOrderLineID")
        assert gets(sandbox, CATALOGUE.references["sales_order_line"].path, 101) == 0
