from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from runtime.db import make_engine, upsert

metadata = MetaData()
versions = Table(
    "test_upsert_versions",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("value", String(40)),
)


@pytest.fixture
def table(engine: Engine) -> Iterator[Table]:
    metadata.create_all(engine)
    yield versions
    metadata.drop_all(engine)


class TestUpsert:
    def test_insert_then_duplicate_is_ignored(self, table: Table, session: Session) -> None:
        assert upsert(session, table, {"key": "a", "version": 1, "value": "x"}, index_elements=["key"])
        assert not upsert(session, table, {"key": "a", "version": 2, "value": "y"}, index_elements=["key"])
        assert session.execute(select(table.c.value)).scalar_one() == "x"

    def test_update_only_when_newer(self, table: Table, session: Session) -> None:
        def put(version: int, value: str) -> bool:
            return upsert(
                session,
                table,
                {"key": "k", "version": version, "value": value},
                index_elements=["key"],
                update=["version", "value"],
                where=lambda excluded: table.c.version < excluded.version,
            )

        assert put(2, "v2")
        assert put(3, "v3")
        assert not put(1, "v1")  # older never overwrites newer
        assert session.execute(select(table.c.version, table.c.value)).one() == (3, "v3")


class TestEngine:
    def test_an_error_does_not_quote_statement_parameters(self, engine: Engine) -> None:
        # The database's own engine (session-wide): whatever backend this run uses.
        with engine.connect() as conn, pytest.raises(DBAPIError) as info:
            conn.execute(text("SELECT missing_column FROM test_no_such_table WHERE x = :name"), {"name": "Jan Jansen"})
        assert "Jan Jansen" not in str(info.value)
        assert "parameters hidden" in str(info.value)

    def test_the_sqlite_busy_timeout_follows_the_url(self, tmp_path: Path) -> None:
        default = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
        shrunk = make_engine(f"sqlite:///{tmp_path / 'b.db'}?timeout=0.25")
        with default.connect() as a, shrunk.connect() as b:
            busy = text("PRAGMA busy_timeout")
            assert (a.execute(busy).scalar(), b.execute(busy).scalar()) == (30000, 250)
        default.dispose()
        shrunk.dispose()
