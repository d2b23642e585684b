"""`exact-pipeline schema record` and `schema diff` through the CLI: the CI guard, exit codes, the prompt, `--json`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import _mount
from cli.main import app as main_app
from exact import CATALOGUE
from runtime.settings import Settings
from schema import Snapshot, calls_needed, expected
from schema.cli import app
from tests.conftest import ServerThread
from tests.pipeline.connected import Connected

runner = CliRunner()
COMMITTED = Path(__file__).parents[2] / "schema" / "sandbox.json"


def test_the_ci_guard_the_committed_sandbox_snapshot_against_the_catalogue_passes() -> None:
    _mount()  # through the console script's app: `exact-pipeline schema diff schema/sandbox.json catalogue`
    result = runner.invoke(main_app, ["schema", "diff", str(COMMITTED), "catalogue"])
    assert result.exit_code == 0, result.output
    assert "no differences between sandbox and catalogue" in result.output


def test_a_dropped_read_field_exits_1_and_names_it(tmp_path: Path) -> None:
    committed = Snapshot.from_json(COMMITTED.read_text(encoding="utf-8"))
    accounts = committed.resources["crm/Accounts"]
    dropped = {k: v for k, v in accounts.fields.items() if k != "Name"}
    resources = {**committed.resources, "crm/Accounts": replace(accounts, fields=dropped)}
    drifted = tmp_path / "drifted.json"
    drifted.write_text(Snapshot("production", resources).to_json(), encoding="utf-8")
    result = runner.invoke(app, ["diff", str(COMMITTED), str(drifted)])
    assert result.exit_code == 1, result.output
    assert "crm/Accounts" in result.output
    assert "Name" in result.output
    assert "breaking" in result.output
    result = runner.invoke(app, ["diff", str(COMMITTED), str(drifted), "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 1
    assert report["breaking"] is True
    assert [(c["resource"], c["kind"], c["field"]) for c in report["changes"]] == [("crm/Accounts", "missing", "Name")]


def test_additions_only_exit_0(tmp_path: Path) -> None:
    catalogue = expected(CATALOGUE)
    more = dict(catalogue.resources)
    accounts = more["crm/Accounts"]
    more["crm/Accounts"] = replace(accounts, fields={**accounts.fields, "NewByExact": accounts.fields["Name"]})
    wider = tmp_path / "wider.json"
    wider.write_text(Snapshot("production", more).to_json(), encoding="utf-8")
    result = runner.invoke(app, ["diff", "catalogue", str(wider), "--json"])
    assert result.exit_code == 0, result.output
    assert [c["kind"] for c in json.loads(result.output)["changes"]] == ["added"]


def test_a_side_that_is_no_snapshot_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"format": 7}', encoding="utf-8")
    for side in (str(tmp_path / "x.json"), str(tmp_path / "absent.json")):
        result = runner.invoke(app, ["diff", side, "catalogue"])
        assert result.exit_code == 2, result.output


def test_diff_against_a_running_sandbox(cli_env: Settings, sandbox: ServerThread) -> None:
    result = runner.invoke(app, ["diff", str(COMMITTED), "sandbox", "--sandbox-url", sandbox.url])
    assert result.exit_code == 0, result.output


def test_record_asks_first_and_spends_nothing_when_refused(
    cli_settings: Settings, connected: Connected, sandbox_http: httpx.Client, tmp_path: Path
) -> None:
    sandbox_http.post("/_sandbox/calls/reset")
    out = tmp_path / "production.json"
    args = ["record", "--out", str(out), "--connection", str(connected.connection_id)]
    result = runner.invoke(app, args, input="n\n")
    assert result.exit_code == 1, result.output
    assert f"{calls_needed(CATALOGUE)} calls" in result.output
    assert not out.exists()
    assert sandbox_http.get("/_sandbox/calls").json()["total"] == 0


def test_record_yes_writes_a_production_snapshot_of_the_current_division(
    cli_settings: Settings, connected: Connected, sandbox_http: httpx.Client, tmp_path: Path
) -> None:
    out = tmp_path / "production.json"
    args = ["record", "--yes", "--out", str(out), "--connection", str(connected.connection_id)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    recorded = Snapshot.from_json(out.read_text(encoding="utf-8"))
    assert recorded.source == "production"
    assert len(recorded.resources) == calls_needed(CATALOGUE)
    # The sandbox behind the connection is the committed one: the same shapes, only the label differs.
    assert recorded.resources == Snapshot.from_json(COMMITTED.read_text(encoding="utf-8")).resources


@pytest.mark.parametrize("production", sorted(COMMITTED.parent.glob("production*.json")), ids=lambda p: p.name)
def test_the_sandbox_holds_against_each_committed_production_snapshot(production: Path) -> None:
    # No parameters (skipped) until a user commits schema/production*.json (README, "The schema guard").
    result = runner.invoke(app, ["diff", str(production), str(COMMITTED)])
    assert result.exit_code == 0, result.output
