"""`schema record` through a connection keeps what it recorded in `schema_snapshots`, where `status` reads it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from runtime.settings import Settings
from schema import Snapshot
from schema.cli import app
from schema.store import snapshots_of
from tests.pipeline import fresh_db
from tests.pipeline.connected import Connected

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
runner = CliRunner()


def test_record_through_a_connection_keeps_the_snapshot(
    cli_settings: Settings, connected: Connected, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    out = tmp_path / "production.json"
    args = ["record", "--yes", "--out", str(out), "--connection", str(connected.connection_id)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with session_factory() as session:
        [kept] = snapshots_of(session, connected.connection_id)
    assert kept.division == 101  # the connection's current division
    assert kept.snapshot == Snapshot.from_json(out.read_text(encoding="utf-8"))
