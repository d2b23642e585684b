"""`schema diff` against a sandbox with a schema fault switched on (`/_sandbox/faults`, kind `schema`): a field
dropped, one renamed, a date served as ISO, a row shape changed; each reported, with exit 1 (and 0 without one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from exact import CATALOGUE
from runtime.settings import Settings
from schema import Snapshot, missing_read_fields
from schema.cli import app
from schema.local import record_sandbox
from tests.conftest import ServerThread

runner = CliRunner()
COMMITTED = Path(__file__).parents[2] / "schema" / "sandbox.json"


def drift(sandbox: ServerThread, http: httpx.Client, fault: dict[str, Any]) -> tuple[int, list[tuple[Any, ...]]]:
    """Arm `fault`, then `schema diff schema/sandbox.json sandbox --json`: the exit code and (resource, kind, field,
    breaking) of each change."""
    armed = http.post("/_sandbox/faults", json={"kind": "schema", **fault})
    assert armed.status_code == 201, armed.text
    result = runner.invoke(app, ["diff", str(COMMITTED), "sandbox", "--sandbox-url", sandbox.url, "--json"])
    changes = json.loads(result.output)["changes"]
    return result.exit_code, [(c["resource"], c["kind"], c["field"], c["breaking"]) for c in changes]


def test_without_a_fault_the_sandbox_matches_its_snapshot(sandbox: ServerThread, cli_env: Settings) -> None:
    result = runner.invoke(app, ["diff", str(COMMITTED), "sandbox", "--sandbox-url", sandbox.url])
    assert result.exit_code == 0, result.output


def test_a_dropped_field_refuses_the_read_and_is_named(
    sandbox: ServerThread, sandbox_http: httpx.Client, cli_env: Settings
) -> None:
    code, changes = drift(sandbox, sandbox_http, {"path": "crm/Accounts", "drop": "Email"})
    assert code == 1
    # Exact refuses a `$select` naming a field it no longer has, as the sandbox does: the refusal names it.
    assert changes == [("crm/Accounts", "refused", None, True), ("crm/Accounts", "missing", "Email", True)]


def test_status_can_name_the_dropped_field(
    sandbox: ServerThread, sandbox_http: httpx.Client, cli_env: Settings
) -> None:
    sandbox_http.post("/_sandbox/faults", json={"kind": "schema", "path": "sync/CRM/Accounts", "drop": ["Email"]})
    recorded = record_sandbox(cli_env, url=sandbox.url)
    assert missing_read_fields(recorded, CATALOGUE) == {"sync/CRM/Accounts": ("Email",)}
    assert missing_read_fields(Snapshot.from_json(COMMITTED.read_text(encoding="utf-8")), CATALOGUE) == {}


def test_a_renamed_field_is_the_old_name_missing(
    sandbox: ServerThread, sandbox_http: httpx.Client, cli_env: Settings
) -> None:
    code, changes = drift(sandbox, sandbox_http, {"path": "sync/CRM/Contacts", "rename": {"Email": "EMail"}})
    assert code == 1
    assert changes == [("sync/CRM/Contacts", "refused", None, True), ("sync/CRM/Contacts", "missing", "Email", True)]


def test_a_date_served_as_iso_is_a_date_format_change(
    sandbox: ServerThread, sandbox_http: httpx.Client, cli_env: Settings
) -> None:
    code, changes = drift(sandbox, sandbox_http, {"path": "sync/CRM/Contacts", "date_format": {"Modified": "iso"}})
    assert code == 1
    assert changes == [("sync/CRM/Contacts", "date_format", "Modified", True)]


def test_a_header_resource_answering_line_rows_is_a_row_shape_change(
    sandbox: ServerThread, sandbox_http: httpx.Client, cli_env: Settings
) -> None:
    code, changes = drift(sandbox, sandbox_http, {"path": "salesinvoice/SalesInvoices", "rows": "lines"})
    assert code == 1
    path = "salesinvoice/SalesInvoices"
    assert changes == [(path, "row_shape", None, True), (path, "page_size", None, False)]


@pytest.mark.parametrize("path", ["sync/SalesInvoice/SalesInvoices", "sync/PurchaseOrder/PurchaseOrders"])
def test_a_line_row_sync_resource_answering_headers_loses_its_line_fields(
    path: str, sandbox: ServerThread, sandbox_http: httpx.Client, cli_env: Settings
) -> None:
    code, changes = drift(sandbox, sandbox_http, {"path": path, "rows": "headers"})
    assert code == 1
    entity = next(e for e in CATALOGUE.entities.values() if e.sync_path == path)
    assert entity.lines is not None
    # One row per document has no line fields: the read naming them is refused, and each is named.
    assert changes[0] == (path, "refused", None, True)
    missing = {field for _path, kind, field, breaking in changes[1:] if kind == "missing" and breaking}
    assert "ID" in missing
    assert missing <= set(entity.lines.fields)
