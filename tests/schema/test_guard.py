"""The guard over kept snapshots against the sandbox over HTTP: a field dropped in production (the sandbox's schema
fault) is flagged for `status` and warned of at worker start; without the fault nothing is; no snapshot is said
plainly."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from exact import CATALOGUE
from runtime.settings import Settings
from schema import record
from schema.guard import FIX, missing_fields, status_lines, status_section, warn_at_start
from schema.store import save_snapshot
from tests.pipeline import fresh_db
from tests.pipeline.connected import Connected

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
DIVISION = 101


def _record(connected: Connected) -> None:
    """Record the sandbox through the stored connection, as production is, and keep it."""
    snapshot = record(connected.client(), DIVISION, CATALOGUE)
    save_snapshot(connected.sessions, connected.connection_id, DIVISION, snapshot)


def test_a_dropped_field_is_flagged_with_its_fix(
    connected: Connected, sandbox_http: httpx.Client, session_factory: sessionmaker[Session]
) -> None:
    armed = sandbox_http.post("/_sandbox/faults", json={"kind": "schema", "path": "crm/Accounts", "drop": "Email"})
    assert armed.status_code == 201, armed.text
    _record(connected)
    with session_factory() as session:
        section = status_section(session, CATALOGUE)
    assert section["recorded"] == [connected.connection_id]
    flagged = [(m["connection"], m["division"], m["resource"], m["field"]) for m in section["missing_fields"]]
    assert flagged == [(connected.connection_id, DIVISION, "crm/Accounts", "Email")]
    assert section["missing_fields"][0]["attention"] == FIX
    assert "TOPIC_FIELDS" in FIX
    assert "catalogue" in FIX
    assert any("Needs attention" in line and "Email" in line for line in status_lines(section))


def test_without_the_fault_nothing_is_flagged(connected: Connected, session_factory: sessionmaker[Session]) -> None:
    _record(connected)
    with session_factory() as session:
        assert missing_fields(session, CATALOGUE) == ([], [connected.connection_id])


def test_no_snapshot_is_said_plainly_not_as_attention(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        section = status_section(session, CATALOGUE)
    assert section == {"recorded": [], "missing_fields": []}
    [line] = status_lines(section)
    assert "no production snapshot" in line
    assert "attention" not in line.lower()


def test_the_worker_at_start_warns_of_each_missing_field(
    connected: Connected, sandbox_http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox_http.post("/_sandbox/faults", json={"kind": "schema", "path": "crm/Accounts", "drop": "Email"})
    _record(connected)
    with caplog.at_level(logging.WARNING, logger="schema.guard"):
        assert warn_at_start(connected.settings, CATALOGUE) == 1
    [event] = [r for r in caplog.records if r.getMessage() == "schema.field_missing"]
    assert (event.resource, event.field, event.division) == ("crm/Accounts", "Email", DIVISION)  # type: ignore[attr-defined]


def test_a_starting_worker_runs_the_check(
    connected: Connected, sandbox_http: httpx.Client, cli_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from celery import signals

    import workers.celery_app  # noqa: F401  (connects its `worker_ready` handler)

    sandbox_http.post("/_sandbox/faults", json={"kind": "schema", "path": "crm/Accounts", "drop": "Email"})
    _record(connected)
    with caplog.at_level(logging.WARNING, logger="schema.guard"):
        signals.worker_ready.send(sender=None)
    assert [r.field for r in caplog.records if r.getMessage() == "schema.field_missing"] == ["Email"]  # type: ignore[attr-defined]


def test_the_worker_at_start_without_a_snapshot_warns_of_nothing(
    connected: Connected, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="schema.guard"):
        assert warn_at_start(connected.settings, CATALOGUE) == 0
    assert not [r for r in caplog.records if r.name == "schema.guard"]
