"""The guard over kept snapshots: fields the code reads that production no longer returns (for `status` and the
worker at start), and a breaking drift between two recordings as a change for the sinks."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from delivery.changes import ChangeRecord
from exact import Catalogue
from runtime.dates import iso_utc
from runtime.db import make_engine, make_session_factory
from runtime.logging import log_event
from runtime.settings import Settings
from schema.diff import Report, missing_read_fields
from schema.store import Stored, latest_per_connection

__all__ = [
    "DRIFT_TOPIC",
    "FIX",
    "MissingField",
    "drift_change",
    "log_missing_fields",
    "missing_fields",
    "status_lines",
    "status_section",
    "warn_at_start",
]

log = logging.getLogger(__name__)

# The topic of a drift change in every sink (the SQL mirror's `topic`, the push's type `exact.<topic>.updated`).
DRIFT_TOPIC = "System.schema_drift"
FIX = (
    "production no longer returns it: narrow the topic with TOPIC_FIELDS, or update exact/catalogue.toml "
    "(then `exact-pipeline schema record` again)"
)
_DRIFT_KEYS = uuid.UUID("0b7e2d34-5c1a-4f7e-9d62-3f8a1c9e4b70")


@dataclass(frozen=True)
class MissingField:
    """One field the code reads or writes that the connection's last production snapshot did not return."""

    connection: int
    division: int
    recorded_at: str
    resource: str
    field: str
    attention: str = FIX

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _missing(stored: Stored, catalogue: Catalogue) -> list[MissingField]:
    recorded = iso_utc(stored.recorded_at, timespec="seconds")
    return [
        MissingField(stored.connection_id, stored.division, recorded, resource, name)
        for resource, names in missing_read_fields(stored.snapshot, catalogue).items()
        for name in names
    ]


def missing_fields(session: Session, catalogue: Catalogue) -> tuple[list[MissingField], list[int]]:
    """Every missing read field of each connection's newest production snapshot, and the connections that have
    one at all (none recorded is not drift: there is nothing to compare)."""
    kept = latest_per_connection(session)
    return [m for stored in kept for m in _missing(stored, catalogue)], [s.connection_id for s in kept]


def status_section(session: Session, catalogue: Catalogue) -> dict[str, Any]:
    """`status`'s `schema`: the connections with a kept production snapshot, and the read fields it lacks."""
    missing, recorded = missing_fields(session, catalogue)
    return {"recorded": recorded, "missing_fields": [m.as_dict() for m in missing]}


def status_lines(section: dict[str, Any]) -> list[str]:
    """`status`'s lines (rich markup) for a `status_section`: no snapshot is said plainly, not as attention."""
    if not section["recorded"]:
        return ["Schema guard: no production snapshot recorded yet (`exact-pipeline schema record`)"]
    missing = section["missing_fields"]
    connections = ", ".join(str(c) for c in section["recorded"])
    lines = [f"Schema guard: {len(missing)} read fields missing in production (connections {connections})"]
    for m in missing:
        lines.append(
            f"[red]Needs attention[/red]: connection {m['connection']}, division {m['division']}: "
            f"{escape(m['resource'])} field {escape(m['field'])} (recorded {m['recorded_at']}): "
            + escape(m["attention"])
        )
    return lines


def log_missing_fields(session: Session, catalogue: Catalogue) -> int:
    """One warning event per missing read field (the worker at start); returns how many were logged."""
    found, _ = missing_fields(session, catalogue)
    for m in found:
        log_event(
            log,
            "schema.field_missing",
            logging.WARNING,
            connection=m.connection,
            division=m.division,
            resource=m.resource,
            field=m.field,
            recorded_at=m.recorded_at,
            fix=m.attention,
        )
    return len(found)


def warn_at_start(settings: Settings, catalogue: Catalogue) -> int:
    """The worker's check at start: warn of each missing read field; a database not reachable yet (or not migrated)
    is logged and skipped, since the guard must never keep a worker from starting."""
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            return log_missing_fields(session, catalogue)
    except SQLAlchemyError as exc:
        log_event(log, "schema.guard_skipped", logging.WARNING, error=str(exc))
        return 0
    finally:
        engine.dispose()


def drift_change(report: Report, division: int, recorded_at: datetime) -> ChangeRecord:
    """The breaking changes of `report` as one change of `DRIFT_TOPIC`: keyed by a hash of the change list, so the
    same drift found again is the same record; versioned by when it was recorded."""
    changes = [
        {"resource": c.resource, "field": c.field, "kind": c.kind, "before": c.a, "after": c.b}
        for c in report.changes
        if c.breaking
    ]
    digest = hashlib.sha256(json.dumps(changes, sort_keys=True).encode()).hexdigest()
    version = int(recorded_at.timestamp() * 1000)
    record = {"division": division, "recorded_at": iso_utc(recorded_at), "changes": changes}
    return ChangeRecord(division, DRIFT_TOPIC, str(uuid.uuid5(_DRIFT_KEYS, digest)), "Update", record, version)
