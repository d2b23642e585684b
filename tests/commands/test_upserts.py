"""Upserts by natural key, the duplicate check of a new account, a lost answer settled, and a pre-flight refusal: each
a command over HTTP, run by a real worker against the sandbox (seeded: 1002 VAT "NL 8123.45.678.B01", 1005 VAT
"NL001234567B02", 1007 and 1008 sharing "NL999999999B01"; 2025 periods 1-6 closed)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from commands.schema import Command
from exact import SPECS, account_code
from receiver.app import create_app
from tests.conftest import ServerThread
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

TOKEN = "commands-token-upserts"
ACCOUNTS = "crm/Accounts"


@pytest.fixture
def api(pipeline: Pipeline) -> Iterator[str]:
    pipeline.settings = pipeline.settings.model_copy(
        update={"commands_token": SecretStr(TOKEN), "commands_settle_seconds": 0.2}
    )
    with ServerThread(create_app(pipeline.settings)) as server:
        pipeline.start_worker()
        yield server.url


def submit(api: str, command: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{api}/commands", json=command, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def run(api: str, command: dict[str, Any]) -> dict[str, Any]:
    """Submit `command` (a fresh key) and return its state once the worker is done with it."""
    command = {"key": f"up-{uuid.uuid4().hex[:10]}", "division": 101, **command}
    assert submit(api, command).status_code == 202
    shown: dict[str, Any] = {}

    def done() -> bool:
        response = httpx.get(f"{api}/commands/{command['key']}", headers={"Authorization": f"Bearer {TOKEN}"})
        shown.update(response.json())
        return shown["status"] not in ("queued", "running")

    await_true(done, timeout=60, what=f"command {command['key']} to finish")
    return shown


def accounts(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.control("GET", f"records/101/{ACCOUNTS}").json()["records"])


def coded(pipeline: Pipeline, code: str) -> list[dict[str, Any]]:
    return [r for r in accounts(pipeline) if r["Code"] == account_code(code)]


def writes(pipeline: Pipeline, endpoint: str) -> int:
    return sum(pipeline.calls(endpoint=endpoint, method=m) for m in ("POST", "PUT", "DELETE"))


class TestUpsert:
    def test_one_match_by_a_vat_number_written_otherwise_is_updated(self, pipeline: Pipeline, api: str) -> None:
        [existing] = coded(pipeline, "1002")  # VATNumber "NL 8123.45.678.B01"
        count = len(accounts(pipeline))
        fields = {"VATNumber": "nl812345678b01", "City": "Wageningen"}
        shown = run(api, {"entity": "Account", "action": "upsert", "match_on": ["VATNumber"], "fields": fields})
        assert shown["status"] == "succeeded", shown
        assert (shown["result"]["action"], shown["result"]["exact_id"]) == ("update", existing["ID"])
        [after] = coded(pipeline, "1002")
        assert (after["City"], after["Name"]) == ("Wageningen", existing["Name"])
        assert len(accounts(pipeline)) == count
        assert pipeline.calls(endpoint=ACCOUNTS, method="POST") == 0

    def test_no_match_creates_one(self, pipeline: Pipeline, api: str) -> None:
        fields = {"VATNumber": "NL 5555.55.555.B05", "Code": "8850", "Name": "Nieuw BV"}
        shown = run(api, {"entity": "Account", "action": "upsert", "match_on": ["VATNumber"], "fields": fields})
        assert shown["status"] == "succeeded", shown
        [created] = coded(pipeline, "8850")
        assert (shown["result"]["action"], shown["result"]["exact_id"]) == ("create", created["ID"])
        again = run(api, {"entity": "Account", "action": "upsert", "match_on": ["Code"], "fields": {**fields}})
        assert (again["result"]["action"], again["result"]["exact_id"]) == ("update", created["ID"])
        assert len(coded(pipeline, "8850")) == 1

    def test_several_matches_fail_naming_them_and_write_nothing(self, pipeline: Pipeline, api: str) -> None:
        fields = {"VATNumber": "NL 9999.99.999.B01", "City": "Ede"}
        shown = run(api, {"entity": "Account", "action": "upsert", "match_on": ["VATNumber"], "fields": fields})
        assert shown["status"] == "failed", shown
        assert shown["result"]["error"]["type"] == "AmbiguousMatch"
        ids = {r["ID"]: r["Code"].strip() for r in coded(pipeline, "1007") + coded(pipeline, "1008")}
        assert {c["exact_id"]: c["code"] for c in shown["result"]["candidates"]} == ids
        assert writes(pipeline, ACCOUNTS) == 0

    def test_an_invoice_is_matched_by_its_yourref(self, pipeline: Pipeline, api: str) -> None:
        reference = f"order-{uuid.uuid4().hex[:6]}"
        invoice = {
            "entity": "SalesInvoice",
            "action": "upsert",
            "match_on": ["YourRef"],
            "fields": {"InvoiceTo": "1001", "YourRef": reference, "Description": "first"},
            "lines": [{"Item": "ITEM-001", "Quantity": 1}],
        }
        first = run(api, invoice)
        assert (first["status"], first["result"]["action"]) == ("succeeded", "create"), first
        second = run(api, {**invoice, "fields": {**invoice["fields"], "Description": "second"}})
        assert (second["status"], second["result"]["action"]) == ("succeeded", "update"), second
        assert second["result"]["exact_id"] == first["result"]["exact_id"]
        assert second["result"]["verified"]["Description"] == "second"
        rows = pipeline.control("GET", "records/101/salesinvoice/SalesInvoices").json()["records"]
        assert [r["YourRef"] for r in rows].count(reference) == 1


class TestDuplicateAccount:
    def test_a_new_account_with_an_existing_vat_number_written_otherwise_fails_naming_it(
        self, pipeline: Pipeline, api: str
    ) -> None:
        [existing] = coded(pipeline, "1005")  # VATNumber "NL001234567B02"
        fields = {"Code": "8860", "Name": "Dubbel BV", "VATNumber": "nl 0012.34.567 b02"}
        shown = run(api, {"entity": "Account", "action": "create", "fields": fields})
        assert shown["status"] == "failed", shown
        assert shown["result"]["error"]["type"] == "DuplicateAccount"
        assert shown["result"]["candidates"] == [{"exact_id": existing["ID"], "code": "1005"}]
        assert "1005" in shown["result"]["error"]["message"]
        assert writes(pipeline, ACCOUNTS) == 0
        allowed = run(api, {"entity": "Account", "action": "create", "dedupe": False, "fields": fields})
        assert allowed["status"] == "succeeded", allowed
        assert len(coded(pipeline, "8860")) == 1

    def test_an_upsert_that_finds_no_code_updates_the_account_with_its_vat_number(
        self, pipeline: Pipeline, api: str
    ) -> None:
        [existing] = coded(pipeline, "1005")
        fields = {"Code": "8862", "Name": existing["Name"], "VATNumber": "NL 0012.34.567.B02", "City": "Zeist"}
        shown = run(api, {"entity": "Account", "action": "upsert", "match_on": ["Code"], "fields": fields})
        assert shown["status"] == "succeeded", shown
        assert (shown["result"]["action"], shown["result"]["exact_id"]) == ("update", existing["ID"])
        assert pipeline.calls(endpoint=ACCOUNTS, method="POST") == 0


class TestLostAnswer:
    def test_a_dropped_create_answer_ends_succeeded_with_the_one_record(self, pipeline: Pipeline, api: str) -> None:
        pipeline.control("POST", "faults", json={"kind": "drop", "endpoint": ACCOUNTS, "count": 1})
        shown = run(api, {"entity": "Account", "action": "create", "fields": {"Code": "8870", "Name": "Kwijt BV"}})
        assert shown["status"] == "succeeded", shown
        [created] = coded(pipeline, "8870")
        assert shown["result"]["exact_id"] == created["ID"]
        assert shown["result"]["found_by"] == SPECS["Account"].marker
        assert created[str(SPECS["Account"].marker)] == f"exact-pipeline:{shown['key']}"
        assert pipeline.calls(endpoint=ACCOUNTS, method="POST") == 1
        assert pipeline.calls(endpoint=ACCOUNTS, method="POST", status=500) == 1

    def test_a_dropped_sales_entry_answer_is_found_by_its_yourref(self, pipeline: Pipeline, api: str) -> None:
        path = SPECS["SalesEntry"].path
        pipeline.control("POST", "faults", json={"kind": "drop", "endpoint": path, "count": 1})
        reference = f"entry-{uuid.uuid4().hex[:6]}"
        shown = run(api, sales_entry("2026-03-10", YourRef=reference))
        assert shown["status"] == "succeeded", shown
        rows = pipeline.control("GET", f"records/101/{path}").json()["records"]
        [created] = [r for r in rows if r.get("YourRef") == reference]
        assert (shown["result"]["exact_id"], shown["result"]["found_by"]) == (created["EntryID"], "YourRef")
        assert pipeline.calls(endpoint=path, method="POST") == 1


class TestPreflight:
    def test_a_sales_entry_into_a_closed_period_fails_before_any_write(self, pipeline: Pipeline, api: str) -> None:
        path = SPECS["SalesEntry"].path
        shown = run(api, sales_entry("2025-03-15", YourRef="closed-period"))
        assert shown["status"] == "failed", shown
        result = shown["result"]
        assert (result["error"]["type"], result["check"]) == ("PreflightFailed", "period_open")
        assert "70" in str(result["values"])
        assert writes(pipeline, path) == 0


def sales_entry(date: str, **fields: Any) -> dict[str, Any]:
    return {
        "entity": "SalesEntry",
        "action": "create",
        "fields": {"Journal": "70", "Customer": "1001", "EntryDate": date, **fields},
        "lines": [{"GLAccount": "8000", "AmountFC": 121.0, "VATCode": "2"}],
    }


class TestTheEdge:
    """What a command may say is checked when it is submitted: 422 naming the field."""

    @pytest.mark.parametrize("entity", sorted(SPECS))
    def test_every_writable_entity_is_a_command_entity(self, entity: str) -> None:
        spec = SPECS[entity]
        name = sorted(spec.fields)[0]
        value: Any = "2026-01-05" if name in spec.dates else "x"
        value = True if name in spec.flags else 1 if name in spec.numbers else value
        assert Command(key="k", division=101, entity=entity, action="create", fields={name: value}).entity == entity

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            pytest.param({"entity": "Nothing"}, "cannot write 'Nothing'", id="unknown-entity"),
            pytest.param({"match_on": ["Name"]}, "cannot be matched on 'Name'", id="not-a-natural-key"),
            pytest.param({"match_on": ["ChamberOfCommerce"]}, "'ChamberOfCommerce' needs a value", id="no-value"),
            pytest.param({"match_on": None}, "needs 'match_on'", id="no-match-on"),
            pytest.param({"action": "create"}, "'match_on' goes only with action 'upsert'", id="match-on-on-create"),
        ],
    )
    def test_a_bad_upsert_is_refused_naming_the_problem(self, change: dict[str, Any], problem: str) -> None:
        body = {
            "key": "k",
            "division": 101,
            "entity": "Account",
            "action": "upsert",
            "match_on": ["VATNumber"],
            "fields": {"VATNumber": "NL812345678B01", "City": "Ede"},
            **change,
        }
        with pytest.raises(ValidationError, match=problem):
            Command.model_validate(body)

    def test_over_http_it_is_a_422_naming_the_field(self, pipeline: Pipeline, api: str) -> None:
        body = {"key": "bad-match", "division": 101, "entity": "Account", "action": "upsert", "match_on": ["Name"]}
        response = submit(api, {**body, "fields": {"Name": "X"}})
        assert response.status_code == 422
        assert "'Name'" in str(response.json()["error"])

    def test_a_kept_command_keeps_its_fingerprint(self) -> None:
        body = {"key": "k", "division": 101, "entity": "Account", "action": "create", "fields": {"Name": "X"}}
        kept = {**body, "id": None, "lines": None}  # as commands were dumped before upserts existed
        before = hashlib.sha256(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        assert Command.model_validate(body).fingerprint() == before
        assert Command.model_validate({**body, "dedupe": False}).fingerprint() != before
