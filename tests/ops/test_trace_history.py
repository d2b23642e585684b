"""The trace's history stays bounded: the newest TRACE_HISTORY entries per key, none older than the age bound."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery.changes import ChangeRecord
from delivery.history import TraceEvent, prune_history, record_reads, record_webhooks
from exact import CATALOGUE
from ops.trace import trace_record
from runtime.db import utc_now

KEEP = 20


def changes(key: str, versions: range) -> list[ChangeRecord]:
    return [ChangeRecord(101, "Accounts", key, "Update", {"ID": key}, v) for v in versions]


def kept(session: Session, key: str) -> list[int]:
    rows = session.scalars(select(TraceEvent).where(TraceEvent.key == key).order_by(TraceEvent.id))
    return [r.detail["version"] for r in rows]


def test_pruning_keeps_the_newest_entries_of_each_key(session_factory: sessionmaker[Session]) -> None:
    busy, quiet = str(uuid.uuid4()), str(uuid.uuid4())
    accounts = CATALOGUE.require("Accounts")
    with session_factory() as session, session.begin():
        # One multi-row insert per call, as a page of a walk writes them.
        for start in range(0, KEEP + 5, 5):
            assert record_reads(session, accounts, changes(busy, range(start, start + 5))) == 5
        record_reads(session, accounts, changes(quiet, range(3)))
    prune_history(session_factory, KEEP, retention_days=0)
    with session_factory() as session:
        assert kept(session, busy) == list(range(5, KEEP + 5))
        assert kept(session, quiet) == [0, 1, 2]
        assert len(trace_record(session, 101, "Accounts", busy).entries) == KEEP


def test_pruning_drops_entries_past_the_age_bound(session_factory: sessionmaker[Session]) -> None:
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    record_webhooks(session_factory, 101, "Accounts", {old: 1, recent: 2}, {})
    with session_factory() as session, session.begin():
        session.execute(update(TraceEvent).where(TraceEvent.key == old).values(at=utc_now() - timedelta(days=8)))
        session.execute(update(TraceEvent).where(TraceEvent.key == recent).values(at=utc_now()))
    assert prune_history(session_factory, KEEP, retention_days=7) >= 1
    with session_factory() as session:
        assert trace_record(session, 101, "Accounts", old).entries == []
        [webhook] = trace_record(session, 101, "Accounts", recent).entries
        assert webhook.kind == "webhook"
        assert webhook.detail == {"action": "Update", "event_ms": 2}
