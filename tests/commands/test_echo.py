"""No echoes, through the whole pipeline: client `a` creates an Account through a command; sink `a` (suppress_echo)
gets no push of the version `a` wrote, sink `b` gets it with origin command, and both get a later change made in
Exact (the sandbox) with origin exact. The command's own result still reaches `a`."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from commands import clients
from commands.models import CommandClient
from commands.tasks import COMMANDS_TOPIC, change_key
from delivery.models import CommandWrite, Delivery
from receiver.app import create_app
from tests.conftest import ServerThread
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import PushTarget, await_true
from tests.pipeline.sinks_support import origins, serve_targets, write_sinks_file

pytestmark = pytest.mark.timeout(240)

ROUTES: dict[str, dict[str, Any]] = {"a": {"suppress_echo": True}, "b": {}}


@pytest.fixture
def targets(pipeline: Pipeline, tmp_path: Path) -> Iterator[dict[str, PushTarget]]:
    with pipeline.sessions() as session:
        session.execute(delete(CommandWrite))  # the run shares one database, and every sandbox seeds the same keys
        session.commit()
    with serve_targets(ROUTES) as (server, targets):
        path = write_sinks_file(tmp_path / "sinks.toml", server.url, ROUTES)
        pipeline.settings = pipeline.settings.model_copy(update={"sinks_file": str(path)})
        yield targets


@pytest.fixture
def token_a(pipeline: Pipeline) -> Iterator[str]:
    with pipeline.sessions() as session:
        token = clients.add(session, "a", divisions=[101])
    yield token
    with pipeline.sessions() as session:
        # A named client turns commands on without COMMANDS_TOKEN, for every later test of the run.
        session.execute(delete(CommandClient))
        session.commit()


@pytest.fixture
def api(pipeline: Pipeline, targets: dict[str, PushTarget], token_a: str) -> Iterator[str]:
    with ServerThread(create_app(pipeline.settings)) as server:
        yield server.url


def settled(api: str, key: str, token: str) -> dict[str, Any]:
    shown: dict[str, Any] = {}

    def done() -> bool:
        response = httpx.get(f"{api}/commands/{key}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        shown.update(response.json())
        return shown["status"] not in ("queued", "running")

    await_true(done, timeout=60, what=f"command {key} to finish")
    return shown


def sandbox_account(pipeline: Pipeline, key: str) -> dict[str, Any]:
    rows = pipeline.control("GET", "records/101/crm/Accounts").json()["records"]
    [found] = [r for r in rows if str(r["ID"]).lower() == key]
    return dict(found)


def test_a_clients_own_write_is_not_echoed_to_its_sink_and_reaches_the_others(
    pipeline: Pipeline, targets: dict[str, PushTarget], token_a: str, api: str
) -> None:
    pipeline.service.register([101], ["Accounts"])
    pipeline.start_worker()
    command = {
        "key": f"echo-{uuid.uuid4().hex[:10]}",
        "division": 101,
        "entity": "Account",
        "action": "create",
        "fields": {"Code": str(random.randrange(60000, 99999)), "Name": "Echo BV"},
    }
    headers = {"Authorization": f"Bearer {token_a}"}
    assert httpx.post(f"{api}/commands", json=command, headers=headers, timeout=10).status_code == 202
    shown = settled(api, command["key"], token_a)
    assert shown["status"] == "succeeded", shown
    key = str(shown["result"]["exact_id"]).lower()
    by_command = {"kind": "command", "key": command["key"], "source": "a"}

    a, b = targets["a"], targets["b"]
    await_true(lambda: bool(origins(b, 101, "Accounts", key)), timeout=120, what="the new account to reach b")
    assert origins(b, 101, "Accounts", key) == [by_command]
    assert origins(pipeline.push, 101, "Accounts", key) == [by_command]  # `http` suppresses nothing
    # One transaction logged the version for every sink it goes to: `a` has no row of it, so it is never pushed.
    with pipeline.sessions() as session:
        logged = set(session.scalars(select(Delivery.sink).where(Delivery.key == key)))
    assert logged == {"http", "b"}
    assert origins(a, 101, "Accounts", key) == []
    # The command's result is no echo: its client waits for it.
    result = change_key(command["key"])
    await_true(lambda: bool(origins(a, 101, COMMANDS_TOPIC, result)), what="the command's result to reach a")
    assert origins(a, 101, COMMANDS_TOPIC, result) == [by_command]

    # A later change, made in Exact: both sinks get it, as Exact's.
    assert pipeline.control("PUT", f"records/101/crm/Accounts/{key}", json={"City": "Ede"}).status_code == 200
    modifier = sandbox_account(pipeline, key)["Modifier"]
    by_exact = {"kind": "exact", "modifier": modifier}
    for target in (a, b):
        await_true(lambda t=target: len(origins(t, 101, "Accounts", key)) >= 1 + (t is b), what="the later change")
    assert origins(a, 101, "Accounts", key) == [by_exact]
    assert origins(b, 101, "Accounts", key) == [by_command, by_exact]
    [record] = [x.payload["data"]["record"] for x in a.accepted if x.payload["data"]["key"] == key]
    assert record["City"] == "Ede"
