"""Commands end to end: submitted over HTTP or by `exact-pipeline write`, run by a real worker process against the
sandbox, kept, readable at `GET /commands/{key}`, and pushed through the sinks like any other change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from commands.tasks import COMMANDS_TOPIC, change_key, enqueue
from delivery.models import MirrorRecord
from receiver.app import create_app
from tests.conftest import ServerThread
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

TOKEN = "commands-token-e2e"
INVOICES = "salesinvoice/SalesInvoices"


@pytest.fixture
def api(pipeline: Pipeline) -> Iterator[str]:
    pipeline.settings = pipeline.settings.model_copy(update={"commands_token": SecretStr(TOKEN)})
    with ServerThread(create_app(pipeline.settings)) as server:
        yield server.url


def submit(api: str, command: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{api}/commands", json=command, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def settled(api: str, key: str) -> dict[str, Any]:
    shown: dict[str, Any] = {}

    def done() -> bool:
        response = httpx.get(f"{api}/commands/{key}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        shown.update(response.json())
        return shown["status"] not in ("queued", "running")

    await_true(done, timeout=60, what=f"command {key} to finish")
    return shown


def invoice(reference: str, **fields: Any) -> dict[str, Any]:
    line = {"Item": "ITEM-001", "Quantity": 3, "UnitPrice": 12.5, "GLAccount": "8000", "VATCode": "2"}
    header = {"InvoiceTo": "1001", "Currency": "EUR", "YourRef": reference, **fields}
    return {
        "key": f"shop-{uuid.uuid4().hex[:10]}",
        "division": 101,
        "entity": "SalesInvoice",
        "action": "create",
        "fields": header,
        "lines": [line],
    }


def invoices_with(pipeline: Pipeline, reference: str) -> list[dict[str, Any]]:
    rows = pipeline.control("GET", f"records/101/{INVOICES}").json()["records"]
    return [r for r in rows if r.get("YourRef") == reference]


def pushed_results(pipeline: Pipeline, key: str, division: int = 101) -> list[dict[str, Any]]:
    lane = pipeline.push.lanes().get((division, COMMANDS_TOPIC, change_key(key)), [])
    return [a.payload for a in lane]


def test_a_command_runs_once_however_often_it_is_sent(pipeline: Pipeline, api: str) -> None:
    """Sent three times over HTTP and its task queued twice more: one invoice in Exact, one result, pushed once."""
    pipeline.start_worker()
    command = invoice("once-only")
    assert submit(api, command).status_code == 202
    assert submit(api, command).status_code == 200
    enqueue(pipeline.settings, command["key"])  # a duplicate task, as the sweeper might send
    shown = settled(api, command["key"])
    assert shown["status"] == "succeeded", shown
    assert submit(api, command).json()["status"] == "succeeded"
    enqueue(pipeline.settings, command["key"])

    [created] = invoices_with(pipeline, "once-only")
    assert shown["result"]["exact_id"] == created["InvoiceID"]
    assert shown["result"]["verified"]["YourRef"] == "once-only"
    [line] = shown["result"]["lines"]
    assert (line["Quantity"], line["VATCode"]) == (3, "2")
    assert shown["attempts"] == 1

    await_true(lambda: len(pushed_results(pipeline, command["key"])) == 1, what="the result's push")
    [payload] = pushed_results(pipeline, command["key"])
    assert payload["type"] == "exact.Commands.updated"
    assert payload["data"]["record"]["key"] == command["key"]
    assert payload["data"]["record"]["status"] == "succeeded"
    with pipeline.sessions() as session:
        mirrored = session.scalars(select(MirrorRecord).where(MirrorRecord.topic == COMMANDS_TOPIC)).all()
    assert [m.record["result"]["exact_id"] for m in mirrored if m.record] == [created["InvoiceID"]]
    await_true(lambda: pipeline.calls(endpoint=INVOICES, status=201) >= 1, what="the count")
    assert pipeline.calls(endpoint=INVOICES, status=201) == 1
    # The write and its references spent from the highest budget class, whatever fetching is doing.
    assert pipeline.calls(endpoint=INVOICES, status=201, **{"class": "command"}) == 1


def test_a_reference_the_division_lacks_fails_before_sending_and_says_so(pipeline: Pipeline, api: str) -> None:
    pipeline.start_worker()
    command = invoice("bad-vat")
    command["division"] = 202
    command["lines"][0]["VATCode"] = "1"  # known in 101, not in 202 (gotcha 2)
    assert submit(api, command).status_code == 202
    shown = settled(api, command["key"])
    assert shown["status"] == "failed"
    assert shown["result"]["error"]["type"] == "UnknownReference"
    assert shown["result"]["field"] == "SalesInvoiceLines[1].VATCode"
    assert "division 202" in shown["result"]["error"]["message"]
    assert pipeline.calls(endpoint=INVOICES) == 0
    await_true(lambda: len(pushed_results(pipeline, command["key"], 202)) == 1, what="the failure's push")


def test_an_update_changes_one_field_and_keeps_the_rest(pipeline: Pipeline, api: str) -> None:
    pipeline.start_worker()
    account = pipeline.control("GET", "records/101/crm/Accounts").json()["records"][0]
    command = {
        "key": f"crm-{uuid.uuid4().hex[:8]}",
        "division": 101,
        "entity": "Account",
        "action": "update",
        "id": account["ID"],
        "fields": {"City": "Arnhem"},
    }
    submit(api, command)
    shown = settled(api, command["key"])
    assert shown["status"] == "succeeded", shown
    rows = pipeline.control("GET", "records/101/crm/Accounts").json()["records"]
    [after] = [r for r in rows if r["ID"] == account["ID"]]
    assert after["City"] == "Arnhem"
    assert {k: after[k] for k in ("Name", "Email", "Phone", "Code")} == {
        k: account[k] for k in ("Name", "Email", "Phone", "Code")
    }


def test_the_write_command_submits_waits_and_is_idempotent(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.start_worker()
    command = invoice("from-cli")
    del command["key"], command["division"]  # the key comes from the file's content, the division from the flag
    path = tmp_path / "command.json"
    path.write_text(json.dumps(command))
    cli = [sys.executable, "-m", "cli.main", "write", "--division", "101", "--file", str(path)]
    env = pipeline.settings.child_environment(os.environ)
    first = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    shown = json.loads(first.stdout)
    assert shown["status"] == "succeeded"
    again = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already submitted" in again.stderr
    assert json.loads(again.stdout)["key"] == shown["key"]
    assert len(invoices_with(pipeline, "from-cli")) == 1

    wrong = subprocess.run(
        [*cli[:-4], "--division", "202", "--file", str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 0, wrong.stderr  # same content, other division: another key, another command
    assert json.loads(wrong.stdout)["key"] != shown["key"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**command, "fields": {"GLAccountCode": "8000"}}))
    refused = subprocess.run([*cli[:-1], str(bad)], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "GLAccountCode" in refused.stderr


def test_a_run_past_its_time_limit_ends_unknown_not_running(pipeline: Pipeline) -> None:
    """A real worker interrupts the run at COMMANDS_TIME_LIMIT_SECONDS while its POST hangs: the write may land (it
    does, here), so the command is `unknown`, not left `running` for ever nor sent again."""
    from commands.schema import Command
    from commands.store import get, submit

    settings = pipeline.settings.model_copy(update={"commands_time_limit_seconds": 2.0})
    pipeline.control("POST", "faults", json={"kind": "slow", "endpoint": "crm/Accounts", "count": 1, "delay": 8})
    command = Command(
        key=f"slow-{uuid.uuid4().hex[:8]}",
        division=101,
        entity="Account",
        action="create",
        fields={"Code": "5150", "Name": "Slow Co"},
    )
    with pipeline.sessions() as session:
        submit(session, command)
    pipeline.start_worker()
    enqueue(settings, command.key)

    def status() -> str:
        with pipeline.sessions() as session:
            row = get(session, command.key)
            return row.status if row is not None else "missing"

    await_true(lambda: status() not in ("queued", "running"), timeout=60, what="the command to end")
    with pipeline.sessions() as session:
        row = get(session, command.key)
    assert row is not None
    assert row.status == "unknown", row.result
    assert row.result is not None
    assert "SoftTimeLimitExceeded" in row.result["error"]["message"]
    await_true(
        lambda: any(
            r.get("Name") == "Slow Co" for r in pipeline.control("GET", "records/101/crm/Accounts").json()["records"]
        ),
        timeout=30,
        what="the slow POST to land",
    )
