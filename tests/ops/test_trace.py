"""`exact-pipeline trace`: a record changed in the sandbox shows its webhook, read, mirror and push, in order."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from cli.main import _mount, app
from delivery.models import DeliveryState
from runtime.settings import get_settings
from tests.pipeline import fresh_db
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

# A database of its own: every sandbox makes the same keys, so an earlier test's history would show in this trace.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


def run(pipeline: Pipeline, *args: str) -> str:
    _mount()
    get_settings.cache_clear()
    result = CliRunner().invoke(app, list(args), env=pipeline.settings.child_environment(os.environ))
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.stdout


def trace_json(pipeline: Pipeline, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(run(pipeline, "trace", *args, "--json"))  # type: ignore[no-any-return]


def test_a_changed_record_traces_webhook_read_mirror_and_delivery_in_order(pipeline: Pipeline) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"delivery_backoff_seconds": 0.2})
    pipeline.service.register([101], ["Accounts"])
    pipeline.start_worker()
    key = pipeline.control("POST", "records/101/crm/Accounts", json={"Name": "traced"}).json()["record"]["ID"]
    pipeline.await_level([(101, "Accounts")])
    pipeline.push.fail_next = 1  # the change's first push fails: the trace shows its two attempts
    assert pipeline.control("PUT", f"records/101/crm/Accounts/{key}", json={"Name": "traced again"}).status_code == 200
    pipeline.await_level([(101, "Accounts")])
    [*_, last] = pipeline.push.lanes()[(101, "Accounts", key.lower())]

    def delivered() -> list[dict]:  # type: ignore[type-arg]
        entries = trace_json(pipeline, "--division", "101", "--topic", "Accounts", "--key", key.upper())["entries"]
        done = [e for e in entries if e["kind"] == "delivery" and e["detail"]["version"] == last.version]
        return entries if any(e["detail"]["state"] == DeliveryState.DELIVERED for e in done) else []

    await_true(lambda: bool(delivered()), timeout=60)
    entries = delivered()
    kinds = [e["kind"] for e in entries]
    # The last version's own steps, in the pipeline's order: its webhook, the read, the mirror, the push.
    webhook = max(i for i, e in enumerate(entries) if e["kind"] == "webhook")
    read = next(i for i, e in enumerate(entries) if e["kind"] == "read" and e["detail"]["version"] == last.version)
    mirror = kinds.index("mirror")
    push = next(
        i
        for i, e in enumerate(entries)
        if e["kind"] == "delivery" and e["detail"]["sink"] == "http" and e["detail"]["version"] == last.version
    )
    assert webhook < read < mirror < push, kinds
    assert entries[read]["detail"]["call"] == "sync/CRM/Accounts"
    assert entries[mirror]["detail"]["version"] == last.version
    assert entries[push]["detail"]["attempts"] == 2
    assert entries[push]["detail"]["event_id"] == last.webhook_id
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)


def test_a_command_that_wrote_the_record_shows_in_its_trace(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.service.register([101], ["Accounts"])
    pipeline.start_worker()
    key = pipeline.control("GET", "records/101/crm/Accounts").json()["records"][0]["ID"]
    command = {"key": "traced-write", "entity": "Account", "action": "update", "id": key, "fields": {"City": "Ede"}}
    path = tmp_path / "command.json"
    path.write_text(json.dumps(command))
    shown = json.loads(run(pipeline, "write", "--division", "101", "--file", str(path)))
    assert shown["status"] == "succeeded", shown

    def traced() -> list[dict]:  # type: ignore[type-arg]
        entries = trace_json(pipeline, "--division", "101", "--topic", "accounts", "--key", key)["entries"]
        mirrored = [e for e in entries if e["kind"] == "mirror" and (e["detail"]["origin"] or {}).get("kind")]
        return entries if mirrored and mirrored[0]["detail"]["origin"]["kind"] == "command" else []

    await_true(lambda: bool(traced()), timeout=60, what="the command's version in the mirror")
    entries = traced()
    [written] = [e for e in entries if e["kind"] == "command"]
    assert written["detail"] | {"modified_ms": 0} == {
        "command": "traced-write",
        "client": "default",
        "modified_ms": 0,
        "entity": "Account",
        "action": "update",
        "state": "succeeded",
    }
    kinds = [e["kind"] for e in entries]
    assert kinds.index("command") < kinds.index("mirror"), kinds
    table = run(pipeline, "trace", "--division", "101", "--topic", "Accounts", "--key", key)
    assert "traced-write" in table
