"""A named client's share of a division's budget, in a real worker process against the sandbox: the client's command
over its share is put back in the queue (retried, not failed) while another client's command in that division runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import delete

from commands import clients
from commands.models import CommandClient, CommandRecord
from receiver.app import create_app
from tests.commands.test_commands import TOKEN, invoice
from tests.conftest import ServerThread
from tests.pipeline.harness import Pipeline
from tests.pipeline.push_support import await_true

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def api(pipeline: Pipeline) -> Iterator[str]:
    # A window of 300 s: the command over its share waits that long, well past the test's end.
    update = {"commands_token": SecretStr(TOKEN), "rate_limit_window_seconds": 300.0}
    pipeline.settings = pipeline.settings.model_copy(update=update)
    with ServerThread(create_app(pipeline.settings)) as server:
        yield server.url
    with pipeline.sessions() as session:
        # The run shares one database, and a named client turns commands on without COMMANDS_TOKEN.
        session.execute(delete(CommandClient))
        session.commit()


def submit(api: str, command: dict[str, Any], token: str) -> httpx.Response:
    return httpx.post(f"{api}/commands", json=command, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def settled(api: str, key: str, token: str) -> str:
    shown: dict[str, Any] = {}

    def done() -> bool:
        response = httpx.get(f"{api}/commands/{key}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        shown.update(response.json())
        return shown["status"] not in ("queued", "running")

    await_true(done, timeout=60, what=f"command {key} to finish")
    return str(shown["status"])


def row(pipeline: Pipeline, key: str) -> CommandRecord:
    with pipeline.sessions() as session:
        found = session.get(CommandRecord, key)
    assert found is not None
    return found


def test_a_client_over_its_share_is_retried_while_another_clients_command_runs(pipeline: Pipeline, api: str) -> None:
    with pipeline.sessions() as session:
        # An invoice costs at most 7 calls (5 references, the POST, the read-back); shop's share is 6 of 60: one.
        shop = clients.add(session, "shop", divisions=[101], share=0.1)
        erp = clients.add(session, "erp", divisions=[101], share=0.5)
    pipeline.start_worker()
    shop_keys = []
    for reference in ("shop-1", "shop-2"):
        command = invoice(reference)
        assert submit(api, command, shop).status_code == 202
        shop_keys.append(command["key"])
    other = invoice("erp-1")
    assert submit(api, other, erp).status_code == 202

    assert settled(api, other["key"], erp) == "succeeded"

    def one_ran_one_was_put_back() -> bool:
        states = sorted((row(pipeline, k).status, row(pipeline, k).attempts) for k in shop_keys)
        return states[0] == ("queued", 1) and states[1][0] == "succeeded"

    await_true(one_ran_one_was_put_back, timeout=60, what="one of shop's commands to run, the other to wait")
    [waiting] = [row(pipeline, k) for k in shop_keys if row(pipeline, k).status == "queued"]
    assert waiting.result is None  # retried later, not failed
    assert row(pipeline, other["key"]).attempts == 1
