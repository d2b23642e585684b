"""A database held by another transaction, and a URL whose connections give up on a held lock quickly."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["impatient", "locked"]


def impatient(url: str, seconds: float) -> str:
    """`url` for a process that gives up on a held lock after `seconds`: SQLite's busy timeout (`?timeout=`, which
    `runtime.db.make_engine` honours), PostgreSQL's `lock_timeout` (libpq `options`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        option = {"timeout": f"{seconds:g}"}
    else:
        option = {"options": f"-c lock_timeout={int(seconds * 1000)}"}
    return parsed.update_query_dict(option).render_as_string(hide_password=False)


@contextmanager
def locked(url: str, table: str) -> Iterator[None]:
    """Hold `table` so that no one else writes it: SQLite's `BEGIN EXCLUSIVE` (the whole file; readers still read,
    WAL), or PostgreSQL's `ACCESS EXCLUSIVE` lock on the table (readers wait too)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(parsed.database), timeout=30, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(parsed)
    try:
        with engine.connect() as connection:
            connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            yield
            connection.rollback()
    finally:
        engine.dispose()
