"""`handle`: a webhook event into its lane, an idle lane's flush at once, events we do not track dropped."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from runtime.db import session_scope
from runtime.settings import Settings
from subscriptions.models import Subscription
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.tasks import handle
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to

# A database of its own: subscriptions other tests left behind would make an untracked pair tracked.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


@pytest.fixture
def ctx(
    settings: Settings, sandbox: ServerThread, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> WorkerContext:
    settings = settings.model_copy(update={"exact_base_url": sandbox.url})
    connection_id = connect_to(settings)
    with session_scope(session_factory) as session:
        for division, topic, state in [(101, "Contacts", "active"), (202, "Contacts", "removed")]:
            session.add(
                Subscription(
                    connection_id=connection_id,
                    division=division,
                    topic=topic,
                    callback_url="http://x/webhooks/exact",
                    state=state,
                )
            )
    return WorkerContext(settings, session_factory, redis_client)


def _event(division: int, topic: str, action: str = "Update", key: str | None = None) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "division": division,
        "topic": topic,
        "key": key or str(uuid.uuid4()),
        "action": action,
        "event_created_on": "2026-11-23T00:00:01.250",
        "client_id": "c",
        "received_at": "2026-11-23T00:00:02Z",
    }


def test_the_first_event_of_an_idle_lane_schedules_its_flush_with_no_countdown(ctx: WorkerContext) -> None:
    scheduled: list[tuple[Lane, float]] = []

    def schedule(lane: Lane, countdown: float) -> None:
        scheduled.append((lane, countdown))

    outcomes = [handle(ctx, _event(101, "contacts"), schedule) for _ in range(20)]
    assert outcomes == ["scheduled"] + ["queued"] * 19
    [(lane, countdown)] = scheduled
    assert (lane.division, lane.topic, countdown) == (101, "Contacts", 0.0)
    batch = ctx.coalescer.take(lane)
    assert len(batch.updates) == 20
    assert set(batch.updates.values()) == {1_795_392_001_250}  # EventCreatedOn in ms, read as UTC
    # While the flush runs, events only join pending; its end asks for the next flush, a window out.
    assert handle(ctx, _event(101, "Contacts", "Delete"), schedule) == "queued"
    assert ctx.coalescer.done(lane) == ctx.settings.coalesce_window_seconds
    assert len(scheduled) == 1


def test_events_we_do_not_track_are_dropped(ctx: WorkerContext) -> None:
    scheduled: list[Lane] = []

    def schedule(lane: Lane, _countdown: float) -> None:
        scheduled.append(lane)

    assert handle(ctx, _event(202, "Contacts"), schedule) == "untracked"  # subscription removed
    assert handle(ctx, _event(101, "Accounts"), schedule) == "untracked"
    assert handle(ctx, _event(101, "NoSuchTopic"), schedule) == "unknown-topic"
    assert scheduled == []


def test_a_failed_schedule_lets_the_next_event_try_again(ctx: WorkerContext) -> None:
    def broken(lane: Lane, countdown: float) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        handle(ctx, _event(101, "Contacts"), broken)
    scheduled: list[Lane] = []

    def schedule(lane: Lane, _countdown: float) -> None:
        scheduled.append(lane)

    assert handle(ctx, _event(101, "Contacts"), schedule) == "scheduled"
    assert len(ctx.coalescer.take(scheduled[0]).updates) == 2
