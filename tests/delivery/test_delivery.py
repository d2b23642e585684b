"""Delivering one lane (the body of `workers.deliver`) against a real push target, Redis and database."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery import push as lane_push
from delivery.changes import ChangeRecord
from delivery.deadletters import replay
from delivery.models import Delivery
from delivery.outbox import PushLane, sweep_lanes
from delivery.push import DeliveryContext, LaneOutcome, backoff_seconds, deliver_lane
from runtime.db import utc_now
from runtime.locks import LaneLock
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.pipeline.push_support import PushTarget, push_settings

DIVISION = 777


@pytest.fixture
def push(settings: Settings, server: ServerThread) -> Settings:
    return push_settings(settings, f"{server.url}/push", delivery_max_attempts=3)


@pytest.fixture
def ctx(push: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis) -> DeliveryContext:
    return DeliveryContext.build(push, session_factory, redis_client)


@pytest.fixture
def key() -> str:
    return str(uuid.uuid4())


def accept(ctx: DeliveryContext, key: str, *versions: int, action: str = "Update") -> None:
    changes = [
        ChangeRecord(DIVISION, "Accounts", key, action, None if action == "Delete" else {"ID": key, "v": v}, v)
        for v in versions
    ]
    with ctx.sessions() as session, session.begin():
        delivery.accept(session, changes, ctx.settings)


def lane(key: str) -> PushLane:
    return PushLane("http", DIVISION, "Accounts", key)


def rows(ctx: DeliveryContext, key: str) -> list[tuple[int, str, int]]:
    with ctx.sessions() as session:
        found = session.scalars(select(Delivery).where(Delivery.key == key).order_by(Delivery.version))
        return [(r.version, r.state, r.attempts) for r in found]


def drain(ctx: DeliveryContext, key: str, *, timeout: float = 30.0) -> list[LaneOutcome]:
    """Run the lane as its retried task would: again after each `retry_in`, until it asks for no retry."""
    outcomes, deadline = [], time.monotonic() + timeout
    while True:
        outcome = deliver_lane(ctx, lane(key), owner=f"test-{uuid.uuid4().hex}")
        outcomes.append(outcome)
        if outcome.retry_in is None:
            return outcomes
        assert time.monotonic() < deadline, f"lane still retrying after {timeout}s: {rows(ctx, key)}"
        time.sleep(outcome.retry_in)


def test_a_change_is_delivered_once(ctx: DeliveryContext, target: PushTarget, key: str) -> None:
    accept(ctx, key, 1)
    assert drain(ctx, key) == [LaneOutcome(delivered=1)]
    assert rows(ctx, key) == [(1, "delivered", 1)]
    assert target.versions(key) == [1]
    assert drain(ctx, key) == [LaneOutcome()]  # a second task for the lane finds nothing to do
    assert target.requests == 1


def test_5xx_is_retried_with_backoff_until_it_succeeds(ctx: DeliveryContext, target: PushTarget, key: str) -> None:
    target.fail_next = 2
    accept(ctx, key, 1)
    outcomes = drain(ctx, key)
    assert [o.retry_in is not None for o in outcomes] == [True, True, False]
    assert outcomes[-1].delivered == 1
    assert rows(ctx, key) == [(1, "delivered", 3)]
    assert target.requests == 3
    assert target.versions(key) == [1]
    with ctx.sessions() as session:
        assert session.scalars(select(Delivery.last_error).where(Delivery.key == key)).one() is None


def test_a_later_version_waits_behind_a_failing_earlier_one(ctx: DeliveryContext, target: PushTarget, key: str) -> None:
    target.fail_next = 1
    accept(ctx, key, 1)
    [first] = [deliver_lane(ctx, lane(key), owner="a")]
    assert first.retry_in is not None
    with ctx.sessions() as session, session.begin():  # make the backoff long, so v1 is surely not due yet
        session.execute(update(Delivery).where(Delivery.key == key).values(due_at=utc_now() + timedelta(seconds=3600)))
    accept(ctx, key, 2, 3)
    assert deliver_lane(ctx, lane(key), owner="b") == LaneOutcome()  # v1 not due: v2 and v3 must not overtake it
    assert target.accepted == []
    assert rows(ctx, key) == [(1, "pending", 1), (2, "pending", 0), (3, "pending", 0)]
    with ctx.sessions() as session, session.begin():
        session.execute(update(Delivery).where(Delivery.key == key).values(due_at=utc_now()))
    drain(ctx, key)
    assert target.versions(key) == [1, 2, 3]
    assert rows(ctx, key) == [(1, "delivered", 2), (2, "delivered", 1), (3, "delivered", 1)]


def test_versions_go_out_in_version_order_whatever_the_accept_order(
    ctx: DeliveryContext, target: PushTarget, key: str
) -> None:
    accept(ctx, key, 30)
    accept(ctx, key, 10)
    accept(ctx, key, 20, action="Delete")
    target.fail_next = 2  # the head (v10) fails twice
    drain(ctx, key)
    assert target.versions(key) == [10, 20, 30]
    assert [a.payload["data"]["action"] for a in target.accepted] == ["Update", "Delete", "Update"]


def test_an_older_version_after_a_newer_was_sent_is_superseded(
    ctx: DeliveryContext, target: PushTarget, key: str
) -> None:
    accept(ctx, key, 5)
    drain(ctx, key)
    accept(ctx, key, 3)  # a late fetch of an older version
    assert drain(ctx, key) == [LaneOutcome(superseded=1)]
    assert target.versions(key) == [5]
    assert rows(ctx, key) == [(3, "superseded", 0), (5, "delivered", 1)]


def test_after_the_attempt_limit_it_is_a_dead_letter_and_the_lane_moves_on(
    ctx: DeliveryContext, target: PushTarget, key: str
) -> None:
    target.fail_next = 3  # exactly the limit: every attempt at v1 fails, v2 then goes through
    accept(ctx, key, 1, 2)
    outcomes = drain(ctx, key)
    assert outcomes[-1] == LaneOutcome(delivered=1, dead=1)
    assert rows(ctx, key) == [(1, "dead", 3), (2, "delivered", 1)]
    with ctx.sessions() as session:
        errors = list(
            session.scalars(select(Delivery.last_error).where(Delivery.key == key).order_by(Delivery.version))
        )
    assert errors[0] is not None
    assert errors[0].endswith("answered 503")
    assert target.versions(key) == [2]
    # Replaying v1 now would send an older version after a newer one: it is superseded instead.
    with ctx.sessions() as session, session.begin():
        replayed = replay(session, None)
    assert lane(key) in replayed.lanes
    assert drain(ctx, key) == [LaneOutcome(superseded=1)]
    assert target.versions(key) == [2]


def test_a_row_left_sending_by_a_crash_goes_out_again_under_the_same_id(
    ctx: DeliveryContext, target: PushTarget, key: str
) -> None:
    accept(ctx, key, 1)
    sink = ctx.push_sinks["http"]
    with ctx.sessions() as session:
        row = session.scalars(select(Delivery).where(Delivery.key == key)).one()
        attempt = lane_push._start(session, row)  # what deliver_lane does before the POST
    assert attempt is not None
    sink.push(attempt)  # the POST succeeds, and the worker dies before it records that
    assert rows(ctx, key) == [(1, "sending", 1)]
    assert drain(ctx, key) == [LaneOutcome(delivered=1)]
    assert rows(ctx, key) == [(1, "delivered", 2)]
    assert target.ids() == [f"{DIVISION}:Accounts:{key}:1:Update"]  # accepted once
    assert target.duplicates == target.ids()  # and recognised the second time by its webhook-id


def test_a_row_whose_every_attempt_died_ends_as_a_dead_letter(
    ctx: DeliveryContext, target: PushTarget, key: str
) -> None:
    accept(ctx, key, 1)
    with ctx.sessions() as session, session.begin():
        session.execute(update(Delivery).where(Delivery.key == key).values(state="sending", attempts=3))
    assert drain(ctx, key) == [LaneOutcome(dead=1)]
    assert target.requests == 0


def test_a_held_lane_is_busy_except_for_its_holder(
    ctx: DeliveryContext, target: PushTarget, key: str, redis_client: redis.Redis
) -> None:
    accept(ctx, key, 1)
    held = LaneLock(redis_client, lane(key).lock_key(ctx.settings.redis_prefix), "task-1", 60)
    assert held.acquire()
    try:
        assert deliver_lane(ctx, lane(key), owner="task-2") == LaneOutcome(busy=True)
        assert target.requests == 0
        # The holder's own redelivered message (same task id) takes it at once.
        assert deliver_lane(ctx, lane(key), owner="task-1") == LaneOutcome(delivered=1)
    finally:
        held.release()
    assert redis_client.exists(lane(key).lock_key(ctx.settings.redis_prefix)) == 0


def test_the_sweeper_finds_overdue_and_stuck_lanes(ctx: DeliveryContext, key: str) -> None:
    other = str(uuid.uuid4())
    accept(ctx, key, 1)
    accept(ctx, other, 1)
    settings = ctx.settings.model_copy(update={"delivery_sweep_after_seconds": 60.0})
    with ctx.sessions() as session:
        assert {lane(key), lane(other)}.isdisjoint(sweep_lanes(settings, session))  # just dispatched: not yet
    long_ago = utc_now() - timedelta(minutes=5)
    with ctx.sessions() as session, session.begin():
        session.execute(update(Delivery).where(Delivery.key == key).values(due_at=long_ago))
        session.execute(update(Delivery).where(Delivery.key == other).values(state="sending", updated_at=long_ago))
    with ctx.sessions() as session:
        swept = sweep_lanes(settings, session)
    assert {lane(key), lane(other)} <= set(swept)


def test_backoff_grows_is_capped_and_respects_retry_after(settings: Settings) -> None:
    s = settings.model_copy(update={"delivery_backoff_seconds": 2.0, "delivery_backoff_max_seconds": 60.0})
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        waits = [backoff_seconds(s, attempts) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits), (attempts, min(waits), max(waits))
    assert backoff_seconds(s, 1, retry_after=30.0) == 30.0
