"""`POST /commands` and `GET /commands/{key}` on a real receiver, database and Redis: who may submit, what is
refused with which 4xx (and nothing kept or queued), and that a key is one command however often it is sent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from commands.models import CommandRecord
from receiver.app import create_app
from runtime.contracts import RUN_COMMAND
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.receiver.conftest import Receiver

TOKEN = "commands-token-for-tests"


@pytest.fixture
def receiver(settings: Settings, redis_client: redis.Redis) -> Iterator[Receiver]:
    settings = settings.model_copy(update={"commands_token": SecretStr(TOKEN)})
    with ServerThread(create_app(settings)) as server:
        yield Receiver(server.url, settings, redis_client)


def a_command(**overrides: Any) -> dict[str, Any]:
    line = {"Item": "ITEM-001", "Quantity": 2, "GLAccount": "8000", "VATCode": "2"}
    return {
        "key": f"order-{uuid.uuid4().hex[:12]}",
        "division": 101,
        "entity": "SalesInvoice",
        "action": "create",
        "fields": {"InvoiceTo": "1001", "Currency": "EUR"},
        "lines": [line],
        **overrides,
    }


def send(receiver: Receiver, body: Any, token: str | None = TOKEN, raw: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{receiver.url}/commands", content=content, headers=headers, timeout=10)


def queued_commands(receiver: Receiver) -> list[str]:
    """The keys of `run_command` tasks waiting in the events queue."""
    keys = []
    for message in receiver.queue():
        envelope = json.loads(message)
        if envelope["headers"]["task"] == RUN_COMMAND:
            keys.append(envelope["headers"]["argsrepr"].strip("[]()',\" "))
    return keys


def kept(session_factory: sessionmaker[Session], key: str | None = None) -> int:
    query = select(func.count()).select_from(CommandRecord)
    if key is not None:
        query = query.where(CommandRecord.key == key)
    with session_factory() as session:
        return int(session.scalar(query) or 0)


class TestSubmit:
    def test_a_new_command_is_kept_queued_once_and_answered_202(
        self, receiver: Receiver, session_factory: sessionmaker[Session]
    ) -> None:
        command = a_command()
        response = send(receiver, command)
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/commands/{command['key']}"
        assert (response.json()["key"], response.json()["status"]) == (command["key"], "queued")
        assert kept(session_factory, command["key"]) == 1
        assert queued_commands(receiver) == [command["key"]]

    def test_the_same_key_twice_is_one_command(
        self, receiver: Receiver, session_factory: sessionmaker[Session]
    ) -> None:
        command = a_command()
        first, again = send(receiver, command), send(receiver, dict(reversed(list(command.items()))))
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.json()["created_at"] == first.json()["created_at"]
        assert queued_commands(receiver) == [command["key"]]
        assert kept(session_factory, command["key"]) == 1

    def test_a_key_reused_for_another_body_is_409(self, receiver: Receiver) -> None:
        command = a_command()
        assert send(receiver, command).status_code == 202
        response = send(receiver, {**command, "fields": {"InvoiceTo": "1002"}})
        assert response.status_code == 409
        assert command["key"] in response.json()["error"]
        assert queued_commands(receiver) == [command["key"]]

    def test_status_is_readable_by_key(self, receiver: Receiver) -> None:
        command = a_command(key="shop/order:77")
        send(receiver, command)
        response = httpx.get(f"{receiver.url}/commands/shop/order:77", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["entity"]) == ("queued", "SalesInvoice")
        missing = httpx.get(f"{receiver.url}/commands/nope", headers={"Authorization": f"Bearer {TOKEN}"})
        assert missing.status_code == 404


class TestRefused:
    @pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", "-"])
    def test_without_the_token_nothing_is_kept(
        self, receiver: Receiver, session_factory: sessionmaker[Session], token: str | None
    ) -> None:
        before = kept(session_factory)
        response = send(receiver, a_command(), token=token)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert kept(session_factory) == before
        assert queued_commands(receiver) == []
        assert httpx.get(f"{receiver.url}/commands/x", headers={"Authorization": "Bearer wrong"}).status_code == 401

    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({"entity": "Invoice"}, "entity"),
            ({"action": "delete"}, "action"),
            ({"division": 0}, "division"),
            ({"key": "has space"}, "key"),
            ({"fields": {"GLAccountCode": "8000"}}, "GLAccountCode"),
            ({"lines": [{"Quantity": 1, "Colour": "red"}]}, "Colour"),
            ({"fields": {"InvoiceTo": {"nested": 1}}}, "fields.InvoiceTo"),
            ({"action": "update"}, "'id'"),
            ({"id": str(uuid.uuid4())}, "'id'"),
            ({"surprise": 1}, "surprise"),
            ({"entity": "Account", "fields": {"Name": "x"}}, "Account has no lines"),
            # Each of these was kept with a 202 and crashed the worker, the command left `running` for good.
            ({"fields": {"InvoiceTo": "1001", "InvoiceDate": 5}}, "InvoiceDate"),
            ({"fields": {"InvoiceTo": "1001", "InvoiceDate": True}}, "InvoiceDate"),
            ({"fields": {"InvoiceTo": "1001", "InvoiceDate": "0001-01-01T00:00:00+01:00"}}, "InvoiceDate"),
            ({"fields": {"InvoiceTo": "1001", "InvoiceDate": "next tuesday"}}, "InvoiceDate"),
            ({"lines": [{"Item": "ITEM-001", "Quantity": "two"}]}, "lines[1].Quantity"),
            ({"lines": [{"Item": "ITEM-001", "UnitPrice": 1e300}]}, "lines[1].UnitPrice"),
            ({"lines": [{"Item": True, "Quantity": 1}]}, "lines[1].Item"),
            ({"entity": "Account", "lines": None, "fields": {"Name": "x", "IsSupplier": "yes"}}, "IsSupplier"),
            ({"division": True}, "division"),
            ({"division": 2**40}, "division"),  # past the Int32 column: a 503 on PostgreSQL
            ({"fields": {"YourRef": 2**70}}, "fields.YourRef"),
        ],
    )
    def test_a_bad_command_is_422_naming_what_is_wrong(
        self, receiver: Receiver, session_factory: sessionmaker[Session], change: dict[str, Any], named: str
    ) -> None:
        before = kept(session_factory)
        response = send(receiver, a_command(**change))
        assert response.status_code == 422, response.text
        assert named in json.dumps(response.json()["error"])
        assert kept(session_factory) == before
        assert queued_commands(receiver) == []

    @pytest.mark.parametrize(
        ("raw", "status"),
        [
            (b"{not json", 400),
            (b"", 400),
            (b"[1]", 422),
            (b"{" + b'"k":"' + b"x" * 300_000 + b'"}', 413),
            (b"[" * 100_000 + b"]" * 100_000, 400),
            (b'{"key": "k", "fields": {"YourRef": NaN}}', 400),
            (b'{"key": "k", "fields": {"YourRef": Infinity}}', 400),
        ],
    )
    def test_a_body_that_is_no_command_is_a_4xx(self, receiver: Receiver, raw: bytes, status: int) -> None:
        assert send(receiver, None, raw=raw).status_code == status
        assert queued_commands(receiver) == []


@pytest.mark.parametrize("unset", [None, SecretStr(""), SecretStr("  ")])
def test_commands_are_off_without_a_token(
    settings: Settings, redis_client: redis.Redis, unset: SecretStr | None
) -> None:
    with ServerThread(create_app(settings.model_copy(update={"commands_token": unset}))) as server:
        url = f"{server.url}/commands"
        responses = [httpx.post(url, json=a_command(), headers=h) for h in ({"Authorization": "Bearer x"}, {})]
        responses.append(httpx.post(url, json=a_command(), headers={"Authorization": "Bearer"}))
    assert [r.status_code for r in responses] == [503, 503, 503]
    response = responses[0]
    assert "COMMANDS_TOKEN" in response.json()["error"]
