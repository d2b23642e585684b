"""Named clients at `POST /commands` and `GET /commands/{key}` on a real receiver, database and Redis: each token
writes only where its client may (403 naming what is not, nothing kept), sees only its own commands (another's is a
404 like a missing one), and COMMANDS_TOKEN stays the all-access client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from commands import clients
from commands.models import CommandClient, CommandRecord
from receiver.app import create_app
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.receiver.conftest import Receiver
from tests.receiver.test_commands import TOKEN, a_command, kept, queued_commands, send


@pytest.fixture
def tokens(session_factory: sessionmaker[Session]) -> Iterator[dict[str, str]]:
    """Two named clients: `shop` writes sales invoices to division 101, `erp` anything anywhere."""
    with session_factory() as session:
        yield {
            "shop": clients.add(session, "shop", divisions=[101], entities=["SalesInvoice"], share=0.2),
            "erp": clients.add(session, "erp", divisions=None),
        }
        # The run shares one database, and a named client turns commands on without COMMANDS_TOKEN.
        session.execute(delete(CommandClient))
        session.commit()


@pytest.fixture
def receiver(settings: Settings, redis_client: redis.Redis, tokens: dict[str, str]) -> Iterator[Receiver]:
    settings = settings.model_copy(update={"commands_token": SecretStr(TOKEN)})
    with ServerThread(create_app(settings)) as server:
        yield Receiver(server.url, settings, redis_client)


def status(receiver: Receiver, key: str, token: str) -> httpx.Response:
    return httpx.get(f"{receiver.url}/commands/{key}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def client_of(session_factory: sessionmaker[Session], key: str) -> str | None:
    with session_factory() as session:
        return session.scalar(select(CommandRecord.client).where(CommandRecord.key == key))


def test_a_client_writes_within_its_grant_and_the_command_records_it(
    receiver: Receiver, tokens: dict[str, str], session_factory: sessionmaker[Session]
) -> None:
    command = a_command()
    assert send(receiver, command, token=tokens["shop"]).status_code == 202
    assert client_of(session_factory, command["key"]) == "shop"
    assert queued_commands(receiver) == [command["key"]]
    by_token = a_command()
    assert send(receiver, by_token).status_code == 202
    assert client_of(session_factory, by_token["key"]) == clients.DEFAULT_CLIENT


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param({"division": 202}, "division 202 (allowed: 101)", id="division"),
        pytest.param({"entity": "Account", "fields": {"Name": "x"}, "lines": None}, "entity Account", id="entity"),
    ],
)
def test_outside_its_grant_is_403_naming_it_and_nothing_is_kept(
    receiver: Receiver,
    tokens: dict[str, str],
    session_factory: sessionmaker[Session],
    change: dict[str, object],
    named: str,
) -> None:
    before = kept(session_factory)
    response = send(receiver, a_command(**change), token=tokens["shop"])
    assert response.status_code == 403, response.text
    assert named in response.json()["error"]
    assert "'shop'" in response.json()["error"]
    assert kept(session_factory) == before
    assert queued_commands(receiver) == []
    assert send(receiver, a_command(**change), token=tokens["erp"]).status_code == 202  # erp may


def test_a_client_sees_only_its_own_commands(receiver: Receiver, tokens: dict[str, str]) -> None:
    command = a_command()
    send(receiver, command, token=tokens["shop"])
    own = status(receiver, command["key"], tokens["shop"])
    assert (own.status_code, own.json()["key"]) == (200, command["key"])
    others, missing = status(receiver, command["key"], tokens["erp"]), status(receiver, "no-such-key", tokens["erp"])
    assert (others.status_code, missing.status_code) == (404, 404)
    assert others.json()["error"].replace(command["key"], "K") == missing.json()["error"].replace("no-such-key", "K")
    assert status(receiver, command["key"], TOKEN).status_code == 200  # COMMANDS_TOKEN: the all-access client


def test_another_clients_key_is_a_409_that_shows_nothing_of_it(receiver: Receiver, tokens: dict[str, str]) -> None:
    command = a_command()
    send(receiver, command, token=tokens["shop"])
    again = send(receiver, command, token=tokens["erp"])
    assert again.status_code == 409
    assert set(again.json()) == {"error"}
    assert queued_commands(receiver) == [command["key"]]


def test_a_rotated_or_removed_token_is_refused_at_once(
    receiver: Receiver, tokens: dict[str, str], session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        new = clients.rotate(session, "shop")
        clients.remove(session, "erp")
    for token in (tokens["shop"], tokens["erp"]):
        response = send(receiver, a_command(), token=token)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert send(receiver, a_command(), token=new).status_code == 202


def test_named_clients_alone_turn_commands_on(
    settings: Settings, redis_client: redis.Redis, tokens: dict[str, str]
) -> None:
    """Without COMMANDS_TOKEN there is no all-access client, but the named ones work; a wrong token is 401."""
    with ServerThread(create_app(settings.model_copy(update={"commands_token": None}))) as server:
        receiver = Receiver(server.url, settings, redis_client)
        assert send(receiver, a_command(), token=tokens["shop"]).status_code == 202
        assert [send(receiver, a_command(), token=t).status_code for t in ("wrong", "-", None)] == [401, 401, 401]
