"""Migration 20261202_0006 on a database that already holds a connection: it becomes app `default`'s, and the same
user may then connect through a second app."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from runtime.migrate import alembic_config, upgrade

BEFORE = "20261202_0006"

_COLUMNS = (
    "base_url, client_id, user_id, access_token_enc, refresh_token_enc, token_issued_at, access_expires_at, version, "
    "needs_consent, created_at, updated_at"
)
_VALUES = (
    "'https://start.exactonline.nl', 'c', 'u-1', 'a', 'r', '2026-12-01', '2026-12-01', 1, false, '2026-12-01', "
    "'2026-12-01'"
)
_BEFORE_APPS = f"INSERT INTO connections ({_COLUMNS}) VALUES ({_VALUES})"
_OF_APP = f"INSERT INTO connections (app, {_COLUMNS}) VALUES (:app, {_VALUES})"


def test_connections_kept_before_apps_are_the_default_apps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, f"{BEFORE}-1")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(_BEFORE_APPS))
    upgrade(url, BEFORE)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT app FROM connections WHERE user_id = 'u-1'")).scalar() == "default"
        conn.execute(text(_OF_APP), {"app": "be"})  # the same user and host, through another app
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(_OF_APP), {"app": "be"})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM connections WHERE app = 'be'"))
    command.downgrade(alembic_config(url), f"{BEFORE}-1")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT user_id FROM connections")).scalars().all() == ["u-1"]
    engine.dispose()
