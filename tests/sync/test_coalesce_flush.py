"""`flush_lane`: a flush that dies keeps its events for the retry; a busy lane is left alone; events that arrive
during a fetch go into exactly one next fetch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import MirrorRecord
from exact import normalize_record
from runtime.settings import Settings
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.tasks import LaneBusy, flush_lane
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to
from tests.sync.lanes import calls, control, make_ctx

# A database of its own: every sandbox makes the same keys, so an earlier test's versions would shadow these.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


@pytest.fixture
def ctx(
    settings: Settings, sandbox: ServerThread, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> WorkerContext:
    return make_ctx(settings, sandbox, session_factory, redis_client)


def _mirror(ctx: WorkerContext) -> dict[str, Any]:
    with ctx.sessions() as session:
        rows = session.scalars(
            select(MirrorRecord).where(MirrorRecord.division == 101, MirrorRecord.topic == "Contacts")
        )
        return {r.key: r.record for r in rows if not r.deleted}


def _ignored(lane: Lane, countdown: float) -> None:
    """These tests run no flush they are not owed; `test_events_during_a_fetch_get_exactly_one_next_fetch` does."""


def _changed_contacts(ctx: WorkerContext, lane: Lane, count: int) -> list[str]:
    made = control(ctx, "POST", "records/101/crm/Contacts/bulk", json={"count": count})
    assert made.status_code == 201
    keys = [r["ID"].lower() for r in control(ctx, "GET", "records/101/crm/Contacts").json()["records"]]
    for key in keys:
        assert ctx.coalescer.add(lane, key, "Update", 4_102_444_800_000) in ("schedule", "queued")
    return keys


def test_a_flush_that_dies_keeps_its_events_and_its_retry_finishes_the_job(
    ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane = Lane(connect_to(ctx.settings), 101, "Contacts")
    keys = _changed_contacts(ctx, lane, 30)
    real_accept = delivery.accept

    def dies(session: Session, changes: Sequence[ChangeRecord], settings: Settings) -> Any:
        raise SystemExit("the worker process is killed here")

    monkeypatch.setattr(delivery, "accept", dies)
    with pytest.raises(SystemExit):
        flush_lane(ctx, lane, owner="task-1", schedule=_ignored)
    assert _mirror(ctx) == {}
    # A SIGKILL runs no `finally`: the dead flush's lock would still be there.
    assert ctx.coalescer.lock(lane, "task-1", ttl_seconds=300).acquire()
    with pytest.raises(LaneBusy):
        flush_lane(ctx, lane, owner="task-2", schedule=_ignored)
    monkeypatch.setattr(delivery, "accept", real_accept)
    # The redelivered message has the same task id: it gets the lock back and finds the events it had taken.
    assert flush_lane(ctx, lane, owner="task-1", schedule=_ignored) == len(keys)
    rows = control(ctx, "GET", "records/101/crm/Contacts").json()["records"]
    assert set(_mirror(ctx)) == {r["ID"].lower() for r in rows}
    assert all(_mirror(ctx)[r["ID"].lower()]["FirstName"] == normalize_record(r)["FirstName"] for r in rows)
    # Nothing left over for a later flush.
    assert not ctx.coalescer.take(lane)


def test_a_busy_lane_is_left_to_its_holder(ctx: WorkerContext) -> None:
    lane = Lane(connect_to(ctx.settings), 101, "Contacts")
    _changed_contacts(ctx, lane, 5)
    holder = ctx.coalescer.lock(lane, "another-flush", ttl_seconds=30)
    assert holder.acquire()
    with pytest.raises(LaneBusy):
        flush_lane(ctx, lane, owner=str(uuid.uuid4()), schedule=_ignored)
    assert _mirror(ctx) == {}
    holder.release()
    assert flush_lane(ctx, lane, owner=str(uuid.uuid4()), schedule=_ignored) > 0


def test_events_during_a_fetch_get_exactly_one_next_fetch(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    lane = Lane(connect_to(ctx.settings), 101, "Contacts")
    _changed_contacts(ctx, lane, 5)
    real_accept, arrived = delivery.accept, list[str]()

    def accept_while_more_arrive(session: Session, changes: Sequence[ChangeRecord], settings: Settings) -> Any:
        # The fetch is under way: three more records change and their webhooks come in.
        if not arrived:
            for n in range(3):
                key = control(ctx, "POST", "records/101/crm/Contacts", json={"LastName": f"during {n}"})
                arrived.append(key.json()["record"]["ID"].lower())
                assert ctx.coalescer.add(lane, arrived[-1], "Update", 4_102_444_800_000) == "queued"
        return real_accept(session, changes, settings)

    monkeypatch.setattr(delivery, "accept", accept_while_more_arrive)
    owed: list[float] = []
    flush_lane(ctx, lane, owner="first", schedule=lambda _lane, countdown: owed.append(countdown))
    assert owed == [ctx.settings.coalesce_window_seconds]  # one next flush, a window after this one ended
    monkeypatch.setattr(delivery, "accept", real_accept)
    before, webhook_before = calls(ctx, 101), _webhook_calls(ctx)
    assert flush_lane(ctx, lane, owner="second", schedule=lambda _lane, countdown: owed.append(countdown)) >= 3
    assert calls(ctx, 101) - before == 1  # one sync walk for the three
    assert _webhook_calls(ctx) - webhook_before == 1  # spent from the webhook class's budget
    assert len(owed) == 1  # and nothing more owed: the lane is idle again
    assert set(arrived) <= set(_mirror(ctx))
    assert not ctx.coalescer.take(lane)


def _webhook_calls(ctx: WorkerContext) -> int:
    return int(control(ctx, "GET", "calls", params={"division": "101", "class": "webhook"}).json()["total"])
