"""Named clients on the real database: a token kept only as its hash, rotated and removed at once, what a client may
write, and a key that stays its own client's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from commands import clients
from commands.models import CommandClient
from commands.schema import Command
from commands.store import KeyReused, submit


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session
        # The run shares one database, and a named client turns commands on without COMMANDS_TOKEN.
        session.execute(delete(CommandClient))
        session.commit()


def a_name() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}"


def a_command(**overrides: object) -> Command:
    data = {
        "key": f"k-{uuid.uuid4().hex}",
        "division": 101,
        "entity": "Account",
        "action": "create",
        "fields": {"Code": "9001", "Name": "Co"},
        **overrides,
    }
    return Command.model_validate(data)


class TestTokens:
    def test_the_token_authenticates_and_only_its_hash_is_kept(self, session: Session) -> None:
        name = a_name()
        token = clients.add(session, name, divisions=[101], entities=["SalesInvoice"], share=0.2)
        found = clients.authenticate(session, token)
        assert found == clients.Client(name, frozenset({101}), frozenset({"SalesInvoice"}), 0.2)
        row = session.get(CommandClient, name)
        assert row is not None
        assert token not in repr([getattr(row, c.key) for c in CommandClient.__table__.columns])
        assert len(token) >= 40
        assert clients.authenticate(session, token + "x") is None

    def test_rotate_replaces_the_token_and_remove_ends_it(self, session: Session) -> None:
        name = a_name()
        first = clients.add(session, name, divisions=None)
        second = clients.rotate(session, name)
        assert second != first
        assert clients.authenticate(session, first) is None
        assert clients.authenticate(session, second) == clients.Client(name)
        clients.remove(session, name)
        assert clients.authenticate(session, second) is None
        with pytest.raises(clients.UnknownClient):
            clients.rotate(session, name)

    @pytest.mark.parametrize(
        ("name", "divisions", "entities", "share", "named"),
        [
            pytest.param("default", None, None, 1.0, "default", id="reserved-name"),
            pytest.param("Has Space", None, None, 1.0, "name", id="bad-name"),
            pytest.param(None, [], None, 1.0, "division", id="no-division"),
            pytest.param(None, [0], None, 1.0, "division", id="zero-division"),
            pytest.param(None, None, ["Invoice"], 1.0, "Invoice", id="unknown-entity"),
            pytest.param(None, None, None, 0.0, "share", id="zero-share"),
            pytest.param(None, None, None, 1.5, "share", id="share-over-1"),
        ],
    )
    def test_a_client_that_makes_no_sense_is_refused(
        self,
        session: Session,
        name: str | None,
        divisions: list[int] | None,
        entities: list[str] | None,
        share: float,
        named: str,
    ) -> None:
        with pytest.raises(clients.ClientError, match=named):
            clients.add(session, name or a_name(), divisions=divisions, entities=entities, share=share)
        assert session.scalars(select(CommandClient)).all() == []

    def test_a_name_is_one_client(self, session: Session) -> None:
        name = a_name()
        clients.add(session, name, divisions=None)
        with pytest.raises(clients.ClientExists):
            clients.add(session, name, divisions=[101])


class TestGrant:
    @pytest.mark.parametrize(
        ("command", "refusal"),
        [
            pytest.param(a_command(), None, id="allowed"),
            pytest.param(a_command(division=202), "division 202 (allowed: 101, 303)", id="division"),
            pytest.param(
                a_command(entity="TimeTransaction", fields={"Notes": "x"}),
                "entity TimeTransaction (allowed: Account)",
                id="entity",
            ),
        ],
    )
    def test_refusal_names_what_is_not_allowed(self, command: Command, refusal: str | None) -> None:
        client = clients.Client("shop", frozenset({101, 303}), frozenset({"Account"}))
        assert client.refusal(command) == (f"client 'shop' may not write to {refusal}" if refusal else None)
        assert clients.ALL_ACCESS.refusal(command) is None

    def test_a_client_sees_its_own_and_the_all_access_client_all(self) -> None:
        shop = clients.Client("shop")
        assert (shop.may_see("shop"), shop.may_see("erp"), shop.may_see("default")) == (True, False, False)
        assert clients.ALL_ACCESS.may_see("shop")


def test_a_key_is_its_own_clients(session: Session) -> None:
    """The same key and body from another client is refused like a reused key: its state is not the sender's."""
    command = a_command()
    row, created = submit(session, command, client="shop")
    assert (row.client, created) == ("shop", True)
    assert submit(session, command, client="shop")[1] is False
    with pytest.raises(KeyReused):
        submit(session, command, client="erp")
    with pytest.raises(KeyReused):
        submit(session, command)  # the all-access client too: the key is taken
