"""Lanes brought up to date against the sandbox: walks, flushes, cursors behind the sinks, division moves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import MirrorRecord
from exact import CATALOGUE, normalize_record
from runtime.settings import Settings
from sandbox.config import SandboxConfig
from sync.coalesce import Batch, Lane
from sync.context import WorkerContext
from sync.reading import Reading
from sync.tasks import fan_out
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to
from tests.sync.lanes import calls, control, make_ctx, subscribe, tombstones

PAGE = 100
# A database of its own per test (see fresh_db).
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(sync_page_size=PAGE)


@pytest.fixture
def ctx(
    settings: Settings, sandbox: ServerThread, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> WorkerContext:
    return make_ctx(settings, sandbox, session_factory, redis_client)


@pytest.fixture
def connection_id(ctx: WorkerContext) -> int:
    return connect_to(ctx.settings)


def _reading(topic: str) -> Reading:
    return Reading.of(CATALOGUE.require(topic))


def _sandbox(ctx: WorkerContext, division: int, topic: str) -> dict[str, dict[str, Any]]:
    """The sandbox's records in the fields a record of the topic holds (what the sync resource serves too)."""
    reading = _reading(topic)
    rows = control(ctx, "GET", f"records/{division}/{reading.entity.path}").json()["records"]
    return {str(r[reading.entity.key]).lower(): _fields(normalize_record(r), reading) for r in rows}


def _fields(record: dict[str, Any], reading: Reading) -> dict[str, Any]:
    return {f: record.get(f) for f in reading.header}


def _mirror(ctx: WorkerContext, division: int, topic: str) -> dict[str, dict[str, Any]]:
    reading = _reading(topic)
    with ctx.sessions() as session:
        rows = session.scalars(
            select(MirrorRecord).where(MirrorRecord.division == division, MirrorRecord.topic == topic)
        )
        return {r.key: _fields(r.record, reading) for r in rows if not r.deleted and r.record is not None}


def test_a_walk_levels_the_mirror_then_costs_one_call_a_read(ctx: WorkerContext, connection_id: int) -> None:
    control(ctx, "POST", "records/101/crm/Contacts/bulk", json={"count": 230})
    lane = Lane(connection_id, 101, "Contacts")
    want = _sandbox(ctx, 101, "Contacts")
    before = calls(ctx, 101)
    assert ctx.lane_sync(lane).walk() == len(want)
    # Sync pages of 100 (shrunk from 1,000), plus one sync/Deleted call.
    assert calls(ctx, 101) - before == math.ceil(len(want) / PAGE) + 1
    assert _mirror(ctx, 101, "Contacts") == want
    assert ctx.cursors.get(connection_id, 101, "Contacts").timestamp == max(r["Timestamp"] for r in want.values())
    before = calls(ctx, 101)
    assert ctx.lane_sync(lane).walk() == 0
    assert calls(ctx, 101) - before == 2


def test_the_cursor_never_passes_what_the_sinks_did_not_accept(
    ctx: WorkerContext, connection_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    control(ctx, "POST", "records/202/crm/Contacts/bulk", json={"count": 250})
    lane = Lane(connection_id, 202, "Contacts")
    real_accept, accepted = delivery.accept, list[list[int]]()

    def failing_second(session: Session, changes: Sequence[ChangeRecord], settings: Settings) -> Any:
        result = real_accept(session, changes, settings)
        if accepted:
            raise RuntimeError("the database went away mid-transaction")
        accepted.append([c.version for c in changes])
        return result

    monkeypatch.setattr(delivery, "accept", failing_second)
    with pytest.raises(RuntimeError):
        ctx.lane_sync(lane).walk()
    [first_page] = accepted
    assert ctx.cursors.get(connection_id, 202, "Contacts").timestamp == max(first_page)
    assert len(_mirror(ctx, 202, "Contacts")) == PAGE  # the failed page's transaction rolled back
    monkeypatch.setattr(delivery, "accept", real_accept)
    # Run again: it resumes after the first page and levels the mirror.
    want = _sandbox(ctx, 202, "Contacts")
    assert ctx.lane_sync(lane).walk() == len(want) - PAGE
    assert _mirror(ctx, 202, "Contacts") == want


def test_a_flush_walks_once_and_skips_what_it_already_has(ctx: WorkerContext, connection_id: int) -> None:
    lane = Lane(connection_id, 101, "Accounts")
    ctx.lane_sync(lane).walk()
    keys = list(_sandbox(ctx, 101, "Accounts"))[:3]
    for key in keys:
        control(ctx, "PUT", f"records/101/crm/Accounts/{key}", json={"Name": f"renamed {key[:4]}"})
    gone = keys[0]
    control(ctx, "DELETE", f"records/101/crm/Accounts/{gone}")
    events = {k: 4_102_444_800_000 for k in keys[1:]}  # "now" for the sandbox: after every fetched version
    before = calls(ctx, 101)
    ctx.lane_sync(lane).flush(Batch(updates=dict(events), deletes={gone: 4_102_444_800_000}))
    assert calls(ctx, 101) - before == 2  # one sync walk, one sync/Deleted
    assert _mirror(ctx, 101, "Accounts") == _sandbox(ctx, 101, "Accounts")
    assert gone in tombstones(ctx, 101, "Accounts")
    # The same events again (Exact's duplicates): everything they point at was accepted after them.
    events = {k: 1_000 for k in keys[1:]}
    before = calls(ctx, 101)
    assert ctx.lane_sync(lane).flush(Batch(updates=events, deletes={gone: 1_000})) == 0
    assert calls(ctx, 101) == before


def test_a_flush_without_sync_endpoint_fetches_by_key(ctx: WorkerContext, connection_id: int) -> None:
    lane = Lane(connection_id, 202, "Opportunities")
    made = [
        k.lower() for k in control(ctx, "POST", "records/202/crm/Opportunities/bulk", json={"count": 3}).json()["ids"]
    ]
    control(ctx, "DELETE", f"records/202/crm/Opportunities/{made[0]}")
    before = calls(ctx, 202)
    batch = Batch(updates={k: 1 for k in made[1:]}, deletes={made[0]: 2})
    assert ctx.lane_sync(lane).flush(batch) == 3
    assert calls(ctx, 202) - before == 1  # one keyed batch; no sync/Deleted for a topic without an EntityType
    want = {k: v for k, v in _sandbox(ctx, 202, "Opportunities").items() if k in made}
    assert _mirror(ctx, 202, "Opportunities") == want
    # The Delete event is the tombstone, at the event's time.
    assert tombstones(ctx, 202, "Opportunities") == {made[0]}


def test_a_division_move_makes_the_next_delta_sync_a_full_resync(ctx: WorkerContext, connection_id: int) -> None:
    subscribe(ctx.sessions, connection_id, 101, ("Contacts", "Items"))
    started: list[tuple[Lane, bool]] = []

    def start(lane: Lane, full: bool) -> None:
        if lane.connection_id == connection_id:
            started.append((lane, full))

    fan_out(ctx, start)
    assert sorted((lane.topic, full) for lane, full in started) == [("Contacts", False), ("Items", False)]
    for lane, _ in started:
        ctx.lane_sync(lane).walk()
    control(ctx, "POST", "divisions/101", json={"move": True})  # Exact regenerates every Timestamp
    started.clear()
    fan_out(ctx, start)
    assert sorted((lane.topic, full) for lane, full in started) == [("Contacts", True), ("Items", True)]
    assert ctx.cursors.get(connection_id, 101, "Contacts").timestamp == 0
    for lane, full in started:
        ctx.lane_sync(lane).walk(full=full)
    assert _mirror(ctx, 101, "Contacts") == _sandbox(ctx, 101, "Contacts")
    assert _mirror(ctx, 101, "Items") == _sandbox(ctx, 101, "Items")
