"""`schema.store`: snapshots kept per connection, the newest first, pruned to the last `KEEP`; which division next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from connections.models import Connection
from runtime.db import session_scope
from schema import Field, Resource, Snapshot
from schema.store import KEEP, latest, latest_per_connection, oldest_division, save_snapshot, snapshots_of
from tests.pipeline import fresh_db

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _connection(sessions: sessionmaker[Session], user: str) -> int:
    with session_scope(sessions) as session:
        row = Connection(
            base_url="https://start.exactonline.nl",
            client_id="app",
            user_id=user,
            access_token_enc="x",
            refresh_token_enc="x",
            token_issued_at=START,
            access_expires_at=START,
        )
        session.add(row)
        session.flush()
        return row.id


def _snapshot(n: int) -> Snapshot:
    # The field name carries n: each stored snapshot is told apart by its text.
    return Snapshot("production", {"crm/Accounts": Resource(fields={f"F{n}": Field("string")}, page_size=1)})


def test_the_newest_snapshots_are_kept_and_older_ones_pruned(session_factory: sessionmaker[Session]) -> None:
    one, two = _connection(session_factory, "u1"), _connection(session_factory, "u2")
    save_snapshot(session_factory, two, 202, _snapshot(99), recorded_at=START)
    for n in range(KEEP + 2):
        save_snapshot(session_factory, one, 101, _snapshot(n), recorded_at=START + timedelta(hours=n))
    with session_factory() as session:
        kept = snapshots_of(session, one)
        assert [s.snapshot for s in kept] == [_snapshot(n) for n in reversed(range(2, KEEP + 2))]
        assert kept[0].recorded_at == START + timedelta(hours=KEEP + 1)
        # Pruning one connection leaves another's alone.
        assert [s.snapshot for s in snapshots_of(session, two)] == [_snapshot(99)]
        newest = latest(session, one)
        assert newest is not None
        assert newest.snapshot == _snapshot(KEEP + 1)
        assert latest(session, one, division=202) is None
        assert [(s.connection_id, s.division, s.snapshot) for s in latest_per_connection(session)] == [
            (one, 101, _snapshot(KEEP + 1)),
            (two, 202, _snapshot(99)),
        ]


def test_the_next_division_is_one_never_recorded_else_the_one_recorded_longest_ago(
    session_factory: sessionmaker[Session],
) -> None:
    one = _connection(session_factory, "u3")
    with session_factory() as session:
        assert oldest_division(session, one, []) is None
        assert oldest_division(session, one, [101, 202]) == 101
    save_snapshot(session_factory, one, 101, _snapshot(1), recorded_at=START)
    with session_factory() as session:
        assert oldest_division(session, one, [101, 202]) == 202
    save_snapshot(session_factory, one, 202, _snapshot(2), recorded_at=START + timedelta(hours=1))
    with session_factory() as session:
        assert oldest_division(session, one, [101, 202]) == 101
