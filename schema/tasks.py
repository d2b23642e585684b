"""Beat's schema recording (`SCHEMA_RECORD_HOURS`): one division per connection recorded and kept, and a breaking
drift from the previous recording pushed through the sinks as `System.schema_drift`."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connections.factory import client_from_settings
from connections.models import Connection, Division
from connections.queries import connection_ids
from delivery.outbox import accept, dispatch_lanes
from exact import CATALOGUE, Catalogue, ExactError, budget_class
from runtime.contracts import RECORD_SCHEMAS
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.logging import log_event
from runtime.settings import Settings, get_settings
from schema.diff import diff
from schema.guard import drift_change
from schema.record import record
from schema.store import latest, oldest_division, save_snapshot

__all__ = ["RECORD_SCHEMAS", "Recorded", "record_all", "record_connection", "record_schemas"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """One connection's recording: the division read and whether it drifted (breaking) from the previous one."""

    connection_id: int
    division: int
    drift: bool


def _divisions(session: Session, connection_id: int) -> list[int]:
    """The connection's granted divisions, its current one first."""
    current = session.scalar(select(Connection.current_division).where(Connection.id == connection_id))
    codes = session.scalars(
        select(Division.code)
        .where(Division.connection_id == connection_id, Division.granted.is_(True))
        .order_by(Division.code)
    )
    return sorted(codes, key=lambda code: code != current)


def record_connection(
    settings: Settings, sessions: sessionmaker[Session], connection_id: int, catalogue: Catalogue = CATALOGUE
) -> Recorded | None:
    """Record the connection's division recorded longest ago (never, first), keep it, push a breaking drift."""
    with sessions() as session:
        division = oldest_division(session, connection_id, _divisions(session, connection_id))
        previous = None if division is None else latest(session, connection_id, division)
    if division is None:
        return None
    with budget_class("backfill"):  # about 50 reads nobody waits for: the lowest class, never ahead of a fetch
        snapshot = record(client_from_settings(settings, sessions, connection_id), division, catalogue)
    stored = save_snapshot(sessions, connection_id, division, snapshot)
    if previous is None:
        return Recorded(connection_id, division, False)
    report = diff(previous.snapshot, snapshot, catalogue)
    if not report.breaking:
        return Recorded(connection_id, division, False)
    change = drift_change(report, division, stored.recorded_at)
    with session_scope(sessions) as session:
        lanes = accept(session, [change], settings).lanes
    dispatch_lanes(settings, lanes)
    log_event(
        log,
        "schema.drift",
        logging.WARNING,
        connection=connection_id,
        division=division,
        changes=len(change.record["changes"]) if change.record else 0,
    )
    return Recorded(connection_id, division, True)


def record_all(settings: Settings, catalogue: Catalogue = CATALOGUE) -> list[Recorded]:
    """One recording per consented connection; one connection's trouble does not stop the others."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:
            ids = connection_ids(session, consented_only=True)
        done: list[Recorded] = []
        for connection_id in ids:
            try:
                recorded = record_connection(settings, sessions, connection_id, catalogue)
            except ExactError as exc:  # a partial snapshot would read as drift: nothing is kept
                log_event(log, "schema.record_failed", logging.ERROR, connection=connection_id, error=exc.message)
                continue
            if recorded is not None:
                done.append(recorded)
        return done
    finally:
        engine.dispose()


@shared_task(name=RECORD_SCHEMAS, acks_late=True)  # type: ignore[untyped-decorator]
def record_schemas() -> list[dict[str, object]]:
    return [asdict(r) for r in record_all(get_settings())]
