"""Migration 20261201_0002 on a database that already holds commands: each becomes the all-access client's."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from runtime.migrate import alembic_config, upgrade


def test_commands_kept_before_named_clients_are_the_default_clients(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO commands (key, division, entity, action, body, fingerprint, status, attempts, created_at,"
                " updated_at) VALUES ('old-1', 101, 'Account', 'create', '{}', 'f', 'succeeded', 1, '2026-11-30', "
                "'2026-11-30')"
            )
        )
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT client FROM commands WHERE key = 'old-1'")).scalar() == "default"
    assert "command_clients" in inspect(engine).get_table_names()
    command.downgrade(alembic_config(url), "0001")
    assert "command_clients" not in inspect(engine).get_table_names()
    engine.dispose()
