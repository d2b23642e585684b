"""What `--connection` means on every command line: the one named, else the only one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connections.models import Connection
from connections.queries import NoSingleConnection, the_connection
from tests.pipeline import fresh_db

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


def _connection(sessions: sessionmaker[Session], *, needs_consent: bool = False) -> int:
    now = datetime.now(UTC)
    row = Connection(
        base_url="http://exact.test",
        client_id="app",
        user_id=uuid.uuid4().hex,
        access_token_enc="x",
        refresh_token_enc="x",
        token_issued_at=now,
        access_expires_at=now,
        needs_consent=needs_consent,
    )
    with sessions() as session, session.begin():
        session.add(row)
        session.flush()
        return row.id


def test_the_only_connection_is_taken_and_a_named_one_must_exist(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, pytest.raises(NoSingleConnection, match="0 connections; name one"):
        the_connection(session, None)
    only = _connection(session_factory)
    with session_factory() as session:
        assert the_connection(session, None) == only
        assert the_connection(session, only) == only
        with pytest.raises(NoSingleConnection, match=f"no connection {only + 1}; run `exact-pipeline connect`"):
            the_connection(session, only + 1)


def test_several_connections_need_a_name_and_consent_can_be_required(session_factory: sessionmaker[Session]) -> None:
    first = _connection(session_factory)
    parked = _connection(session_factory, needs_consent=True)
    with session_factory() as session:
        with pytest.raises(NoSingleConnection, match="2 connections exist; name one with --connection"):
            the_connection(session, None, why=" exist")
        assert the_connection(session, None, consented_only=True) == first
        assert the_connection(session, parked) == parked
        with pytest.raises(NoSingleConnection, match=f"no usable connection {parked}"):
            the_connection(session, parked, consented_only=True)
