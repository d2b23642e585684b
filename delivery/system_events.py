"""Operational events pushed through the sinks as `System.<name>` changes, one per episode by a deterministic id.

Each event is a change of topic `System.<name>` (pushed as `exact.System.<name>.updated`) keyed by its subject (a
connection, a subscription pair, a delivery, a push lane) and versioned by when its episode began, so the same
episode found again has the same event id and is pushed once: the mirror moves only to a newer version and the
delivery log holds one row per (sink, event id). A new episode of the same subject is a newer version.

Events about System changes themselves are never made: a sink that is down would otherwise turn its own
notifications into more of them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from connections.models import Connection
from delivery.changes import ChangeRecord
from delivery.models import LIVE_STATES, Delivery, DeliveryState, MirrorRecord
from delivery.outbox import accept, dispatch_lanes
from runtime.dates import iso_utc
from runtime.db import session_scope, stored_utc, utc_now
from runtime.logging import log_event
from runtime.settings import Settings

__all__ = [
    "CONSENT_NEEDED",
    "DEAD_LETTER",
    "LANE_STUCK",
    "SUBSCRIPTION_SILENT",
    "SYSTEM_PREFIX",
    "consent_needed",
    "dead_letters",
    "emit",
    "emit_consent_needed",
    "stuck_lanes",
    "subscription_silent",
]

log = logging.getLogger(__name__)

SYSTEM_PREFIX = "System."
CONSENT_NEEDED = "System.consent_needed"
SUBSCRIPTION_SILENT = "System.subscription_silent"
DEAD_LETTER = "System.dead_letter"
LANE_STUCK = "System.lane_stuck"

_KEYS = uuid.UUID("6f1d3c2e-5b0a-4e8f-9a51-2c7d0e4b9f13")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Dead letters older than this are taken as already told (the check runs every minute).
_DEAD_LOOKBACK = timedelta(days=1)
_LIMIT = 500


def _change(name: str, division: int, subject: str, version: int, record: dict[str, Any]) -> ChangeRecord:
    key = str(uuid.uuid5(_KEYS, f"{name}:{subject}"))
    return ChangeRecord(division, name, key, "Update", {"event": name.removeprefix(SYSTEM_PREFIX), **record}, version)


def _ms(moment: datetime) -> int:
    return (stored_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


# -- the events
def consent_needed(session: Session) -> list[ChangeRecord]:
    """One per connection needing consent; its episode is the token version (a reconnect moves it on)."""
    rows = session.scalars(select(Connection).where(Connection.needs_consent.is_(True)).order_by(Connection.id))
    return [
        _change(
            CONSENT_NEEDED,
            row.current_division or 0,
            str(row.id),
            row.version,
            {
                "connection": row.id,
                "error": row.consent_error,
                "since": iso_utc(row.updated_at),
                "fix": "run `exact-pipeline connect`",
            },
        )
        for row in rows
    ]


def subscription_silent(connection_id: int, division: int, topic: str, since: datetime, hours: float) -> ChangeRecord:
    """A pair with no webhook for `hours`; its episode is the last webhook (a new one ends it)."""
    subject = f"{connection_id}:{division}:{topic}"
    record = {"connection": connection_id, "division": division, "topic": topic, "since": iso_utc(since)}
    return _change(SUBSCRIPTION_SILENT, division, subject, _ms(since), record | {"silent_hours": hours})


def dead_letters(session: Session, now: datetime | None = None) -> list[ChangeRecord]:
    """One per delivery that became a dead letter in the last day; its episode is when it died (a replay that dies
    again is another)."""
    since = (now or utc_now()) - _DEAD_LOOKBACK
    query = (
        select(Delivery)
        .where(Delivery.state == DeliveryState.DEAD, Delivery.updated_at >= since)
        .where(Delivery.topic.not_like(f"{SYSTEM_PREFIX}%"))
        .order_by(Delivery.id)
        .limit(_LIMIT)
    )
    return [
        _change(
            DEAD_LETTER,
            row.division,
            f"{row.sink}:{row.event_id}",
            _ms(row.updated_at),
            {
                "sink": row.sink,
                "division": row.division,
                "topic": row.topic,
                "key": row.key,
                "version": row.version,
                "event_id": row.event_id,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "dead_at": iso_utc(row.updated_at),
                "fix": "`exact-pipeline deadletters replay` once the target takes it",
            },
        )
        for row in session.scalars(query)
    ]


def stuck_lanes(session: Session, minutes: float, now: datetime | None = None) -> list[ChangeRecord]:
    """One per push lane whose oldest live delivery is older than `minutes`; its episode is that delivery's
    creation (once it leaves, the next oldest starts another)."""
    cutoff = (now or utc_now()) - timedelta(minutes=minutes)
    lane = (Delivery.sink, Delivery.division, Delivery.topic, Delivery.key)
    oldest = func.min(Delivery.created_at)
    query = (
        select(*lane, oldest, func.count(Delivery.id))
        .where(Delivery.state.in_(LIVE_STATES), Delivery.topic.not_like(f"{SYSTEM_PREFIX}%"))
        .group_by(*lane)
        .having(oldest < cutoff)
        .order_by(oldest)
        .limit(_LIMIT)
    )
    return [
        _change(
            LANE_STUCK,
            division,
            f"{sink}:{division}:{topic}:{key}",
            _ms(since),
            {
                "sink": sink,
                "division": division,
                "topic": topic,
                "key": key,
                "pending": count,
                "since": iso_utc(since),
                "stuck_minutes": minutes,
            },
        )
        for sink, division, topic, key, since, count in session.execute(query)
    ]


# -- emitting
def emit(settings: Settings, sessions: sessionmaker[Session], changes: Sequence[ChangeRecord]) -> int:
    """Hand the episodes the mirror does not hold yet to the sinks, in one transaction, then dispatch their pushes;
    returns how many were new to the mirror (all of them without the SQL sink: accepting again changes nothing)."""
    if not changes:
        return 0
    with session_scope(sessions) as session:
        fresh = _unseen(session, changes)
        lanes = accept(session, fresh, settings).lanes if fresh else ()
    dispatch_lanes(settings, lanes)
    return len(fresh)


def emit_consent_needed(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """Where a worker met NeedsConsent: every connection needing consent, once per episode. A database that refuses
    only delays it: the periodic check (`sync.checks`) finds it again."""
    try:
        with sessions() as session:
            found = consent_needed(session)
        return emit(settings, sessions, found)
    except SQLAlchemyError as exc:
        log_event(log, "workers.system_events.failed", logging.WARNING, error=str(exc))
        return 0


def _unseen(session: Session, changes: Sequence[ChangeRecord]) -> list[ChangeRecord]:
    query = select(MirrorRecord.topic, MirrorRecord.key, MirrorRecord.version).where(
        MirrorRecord.topic.in_({c.topic for c in changes}), MirrorRecord.key.in_({c.key for c in changes})
    )
    held = {(topic, key): version for topic, key, version in session.execute(query)}
    return [c for c in changes if held.get((c.topic, c.key), -1) < c.version]
