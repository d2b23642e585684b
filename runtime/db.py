"""The database: declarative base, engines, sessions and a portable upsert."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["Base", "make_engine", "make_session_factory", "session_scope", "stored_utc", "upsert", "utc_now"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# How long SQLite waits for another process's write lock before "database is locked".
SQLITE_BUSY_SECONDS = 30.0


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utc_now() -> datetime:
    return datetime.now(UTC)


def stored_utc(value: datetime) -> datetime:
    """A datetime read back from the database, made aware: SQLite hands them back naive, and all we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout (30 s, or the URL's `?timeout=N`) so several processes
    can share it. Statement parameters are kept out of error messages: they are records' names and e-mails, and
    errors end up in logs."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        timeout = float(make_url(url).query.get("timeout", SQLITE_BUSY_SECONDS))  # type: ignore[arg-type]
        engine = create_engine(url, connect_args={"timeout": timeout}, **kwargs)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=int(timeout * 1000)))
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upsert(
    session: Session,
    table: Table,
    values: Mapping[str, Any],
    *,
    index_elements: Sequence[str],
    update: Sequence[str] = (),
    where: Callable[[Any], ColumnElement[bool]] | None = None,
) -> bool:
    """Insert `values`, or on conflict update the `update` columns, only where `where(excluded)` holds.

        upsert(s, mirror, row, index_elements=["key"], update=["version", "record"],
               where=lambda excluded: mirror.c.version < excluded.version)

    Returns True when a row was inserted or updated. SQLAlchemy has no backend-agnostic
    upsert, so the dialect's own insert is picked here, once.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt: Any = insert(table).values(**values)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(index_elements),
            set_={name: stmt.excluded[name] for name in update},
            where=where(stmt.excluded) if where is not None else None,
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(index_elements))
    result = session.execute(stmt.returning(*[table.c[name] for name in index_elements]))
    return result.first() is not None
