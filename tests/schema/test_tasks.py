"""Beat's schema recording against the sandbox over HTTP: each run keeps a snapshot; a breaking drift from the
previous one (the sandbox's schema fault) reaches the SQL mirror as topic `System.schema_drift`, and nothing else
does; `SCHEMA_RECORD_HOURS=0` schedules nothing."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connections.models import Division
from delivery.models import MirrorRecord
from runtime.db import session_scope
from runtime.settings import Settings
from sandbox.config import SandboxConfig
from schema.guard import DRIFT_TOPIC
from schema.store import snapshots_of
from schema.tasks import RECORD_SCHEMAS, Recorded, record_all
from tests.pipeline import fresh_db
from tests.pipeline.connected import Connected
from workers.celery_app import TASK_MODULES, make_celery

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
DIVISION = 101
# Three recordings of 49 calls each: a budget that lets them run without waiting for the next minute.
MINUTE_LIMIT = 1000


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(minute_limit=MINUTE_LIMIT)


def _drift_rows(sessions: sessionmaker[Session]) -> list[MirrorRecord]:
    with sessions() as session:
        return list(session.scalars(select(MirrorRecord).where(MirrorRecord.topic == DRIFT_TOPIC)))


def test_a_breaking_drift_is_pushed_once_and_no_drift_is_not(
    connected: Connected, sandbox_http: httpx.Client, session_factory: sessionmaker[Session]
) -> None:
    settings = connected.settings.model_copy(update={"rate_limit_per_minute": MINUTE_LIMIT})
    cid = connected.connection_id
    with session_scope(session_factory) as session:
        # One division granted, so every run records the same one and diffs it with the run before.
        session.execute(update(Division).where(Division.code != DIVISION).values(granted=False))
    assert record_all(settings) == [Recorded(cid, DIVISION, False)]  # the first: nothing to diff with
    assert record_all(settings) == [Recorded(cid, DIVISION, False)]  # unchanged
    assert _drift_rows(session_factory) == []
    sandbox_http.post("/_sandbox/faults", json={"kind": "schema", "path": "crm/Accounts", "drop": "Email"})
    assert record_all(settings) == [Recorded(cid, DIVISION, True)]
    with session_factory() as session:
        kept = snapshots_of(session, cid)
    assert len(kept) == 3
    assert kept[0].snapshot.resources["crm/Accounts"].error is not None
    [row] = _drift_rows(session_factory)
    assert row.division == DIVISION
    assert row.record is not None
    assert row.version == int(kept[0].recorded_at.timestamp() * 1000)
    changes = {(c["resource"], c["field"], c["kind"]) for c in row.record["changes"]}
    assert ("crm/Accounts", "Email", "missing") in changes
    assert {c["resource"] for c in row.record["changes"]} == {"crm/Accounts"}


def test_the_beat_entry_only_when_schema_record_hours_is_set(settings: Settings) -> None:
    off = make_celery(settings, include=TASK_MODULES)
    assert RECORD_SCHEMAS not in {entry["task"] for entry in off.conf.beat_schedule.values()}
    on = make_celery(settings.model_copy(update={"schema_record_hours": 6.0}), include=TASK_MODULES)
    on.loader.import_default_modules()
    [entry] = [e for e in on.conf.beat_schedule.values() if e["task"] == RECORD_SCHEMAS]
    assert entry["schedule"] == 6 * 3600.0
    assert entry["options"]["expires"] == entry["schedule"]
    assert RECORD_SCHEMAS in on.tasks
