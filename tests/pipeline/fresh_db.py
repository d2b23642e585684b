"""A fresh migrated database per test, for tests that compare the mirror with a fresh sandbox.

The mirror is keyed by (division, topic, key) and every sandbox seeds the same keys with Timestamps that start
again at 1: in a database shared with earlier tests, their higher versions would shadow this test's records.
Import the three fixtures into a test module to override the session-wide ones there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from runtime.db import make_engine, make_session_factory
from runtime.migrate import upgrade
from tests.conftest import PG_URL, RUN_ID

__all__ = ["database_url", "engine", "fresh_database", "session_factory"]


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


@contextmanager
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """A migrated database of its own (SQLite in `tmp_path`, or a new PostgreSQL database), dropped afterwards."""
    if not PG_URL.startswith("postgresql"):
        url = f"sqlite:///{tmp_path / 'test.db'}"
        upgrade(url)
        yield url
        return
    name = f"ep_test_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
