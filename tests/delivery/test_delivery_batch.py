"""Delivering a batch of lanes in one task (`deliver_lanes`) against a real push target, Redis and database: order per
key, the fence before the POSTs, one commit per state change of the batch, and the SQL and Redis it costs."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from delivery import outbox as delivery
from delivery import push as lane_push
from delivery.changes import ChangeRecord
from delivery.models import Delivery
from delivery.outbox import PushLane, batches
from delivery.push import BatchOutcome, DeliveryContext, deliver_lanes, retry_groups
from runtime.db import utc_now
from runtime.locks import LaneLock
from runtime.settings import Settings
from tests.conftest import REDIS_URL, ServerThread
from tests.pipeline.push_support import PushTarget, push_settings
from tests.pipeline.target_support import ScriptedTarget, serve_scripted

DIVISION = 8128


@pytest.fixture
def ctx(
    settings: Settings, server: ServerThread, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> DeliveryContext:
    push = push_settings(settings, f"{server.url}/push", delivery_max_attempts=5)
    return DeliveryContext.build(push, session_factory, redis_client)


def accept(ctx: DeliveryContext, changes: list[ChangeRecord]) -> list[PushLane]:
    with ctx.sessions() as session, session.begin():
        return list(delivery.accept(session, changes, ctx.settings).lanes)


def change(key: str, version: int) -> ChangeRecord:
    return ChangeRecord(DIVISION, "Accounts", key, "Update", {"ID": key, "v": version}, version)


def lanes_of(keys: list[str]) -> list[PushLane]:
    return [PushLane("http", DIVISION, "Accounts", k) for k in keys]


def states(ctx: DeliveryContext, keys: list[str]) -> dict[str, list[tuple[int, str, int]]]:
    with ctx.sessions() as session:
        found = session.scalars(select(Delivery).where(Delivery.key.in_(keys)).order_by(Delivery.version))
        result: dict[str, list[tuple[int, str, int]]] = {k: [] for k in keys}
        for r in found:
            result[r.key].append((r.version, r.state, r.attempts))
        return result


def drain(ctx: DeliveryContext, keys: list[str], *, timeout: float = 30.0) -> list[BatchOutcome]:
    """Run the batch as the task and its retries would: the keys to retry again after their wait."""
    outcomes, deadline, todo = [], time.monotonic() + timeout, list(keys)
    while todo:
        outcome = deliver_lanes(ctx, lanes_of(todo), owner=f"test-{uuid.uuid4().hex}")
        outcomes.append(outcome)
        todo = list(outcome.retry)
        if todo:
            assert time.monotonic() < deadline, f"still retrying after {timeout}s: {states(ctx, keys)}"
            time.sleep(max(outcome.retry.values()))
    return outcomes


class _CountingPacker:
    def __init__(self, packer: Any, counts: dict[str, int]) -> None:
        self._packer, self._counts = packer, counts

    def pack(self, *args: Any) -> Any:
        self._counts["redis"] += 1
        return self._packer.pack(*args)


@contextmanager
def counted(ctx: DeliveryContext, engine: Engine) -> Iterator[tuple[DeliveryContext, dict[str, int]]]:
    """`ctx` over a Redis client that counts every command it sends, and the SQL statements and commits of `engine`."""
    counts = {"redis": 0, "statements": 0, "commits": 0}

    class Counting(redis.Connection):
        def _construct_command_packer(self, packer: Any) -> Any:
            return _CountingPacker(super()._construct_command_packer(packer), counts)  # type: ignore[no-untyped-call]

    def statement(*_: object) -> None:
        counts["statements"] += 1

    def commit(*_: object) -> None:
        counts["commits"] += 1

    client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(REDIS_URL, connection_class=Counting))
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield DeliveryContext(ctx.settings, ctx.sessions, client, ctx.push_sinks), counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
        client.close()


def test_versions_go_out_in_order_per_key_across_a_batch_through_failures(
    ctx: DeliveryContext, target: PushTarget
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(8)]
    changes = [change(k, v) for k in keys for v in (1, 2, 3)]
    random.Random(7).shuffle(changes)  # accepted in any order
    accept(ctx, changes)
    target.fail_next = 4  # the first four POSTs fail, whichever keys they belong to (the breaker opens at five)
    outcomes = drain(ctx, keys)
    assert len(outcomes) > 1  # the failures were retried
    assert sum(o.delivered for o in outcomes) == len(changes)
    assert {k: [(v, state) for v, state, _ in rows] for k, rows in states(ctx, keys).items()} == {
        k: [(1, "delivered"), (2, "delivered"), (3, "delivered")] for k in keys
    }
    for key in keys:
        assert target.versions(key) == [1, 2, 3]  # never a later version before an earlier one
    assert target.duplicates == []


def test_every_head_of_a_batch_is_committed_sending_before_any_post(
    ctx: DeliveryContext, session_factory: sessionmaker[Session]
) -> None:
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    async def endpoint(request: Request) -> Response:
        await request.body()
        webhook_id = request.headers["webhook-id"]
        with session_factory() as session:  # another connection: it sees only what was committed
            state = session.scalars(select(Delivery.state).where(Delivery.event_id == webhook_id)).one()
        with lock:
            seen.append((webhook_id, state))
        return Response(status_code=204)

    keys = [str(uuid.uuid4()) for _ in range(5)]
    with ServerThread(Starlette(routes=[Route("/push", endpoint, methods=["POST"])])) as server:
        settings = push_settings(ctx.settings, f"{server.url}/push")
        own = DeliveryContext.build(settings, ctx.sessions, ctx.redis)
        accept(own, [change(k, 1) for k in keys])
        outcome = deliver_lanes(own, lanes_of(keys), owner="fence")
    assert outcome == BatchOutcome(delivered=5)
    assert sorted(seen) == sorted((f"{DIVISION}:Accounts:{k}:1:Update", "sending") for k in keys)


def test_a_crash_between_the_commit_and_the_posts_resends_the_batch_under_the_same_ids(
    ctx: DeliveryContext, target: PushTarget
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(4)]
    accept(ctx, [change(k, 1) for k in keys])
    sink = ctx.push_sinks["http"]
    with ctx.sessions() as session:
        rows = list(session.scalars(select(Delivery).where(Delivery.key.in_(keys)).order_by(Delivery.key)))
        started = lane_push._start_many(session, rows)  # what a round does before its POSTs
    assert [s.row_id for s in started] == [r.id for r in rows]
    sink.push(started[0].outgoing)  # the first POST goes through, and the worker dies before it records anything
    assert {k: s[0][1:] for k, s in states(ctx, keys).items()} == {k: ("sending", 1) for k in keys}
    assert drain(ctx, keys) == [BatchOutcome(delivered=4)]
    assert {k: s[0][1:] for k, s in states(ctx, keys).items()} == {k: ("delivered", 2) for k in keys}
    ids = sorted(f"{DIVISION}:Accounts:{k}:1:Update" for k in keys)
    assert sorted(target.ids()) == ids  # each accepted once
    assert target.duplicates == [started[0].outgoing.change.event_id]  # the resend, recognised by its webhook-id


def test_a_batch_commits_once_per_state_change_and_costs_the_same_sql_and_redis_for_1_or_20_keys(
    ctx: DeliveryContext, target: PushTarget, engine: Engine
) -> None:
    costs = []
    for size in (1, 20):
        keys = [str(uuid.uuid4()) for _ in range(size)]
        accept(ctx, [change(k, 1) for k in keys])
        with counted(ctx, engine) as (counting, counts):
            assert deliver_lanes(counting, lanes_of(keys), owner=f"count-{size}") == BatchOutcome(delivered=size)
        costs.append(counts)
    one, twenty = costs
    # One commit marks every head sending (the fence), one marks them delivered: not two a push.
    assert twenty["commits"] == one["commits"] == 2
    # Heads read, sending, delivered, and the read that finds nothing left; the locks, the breaker's gate, its
    # reset and the release: none of it grows with the batch.
    assert twenty["statements"] == one["statements"] <= 4
    assert twenty["redis"] == one["redis"]
    assert twenty["redis"] / 20 <= 3
    assert (twenty["statements"] + twenty["commits"]) / 20 <= 1
    assert len(target.ids()) == 21


def test_a_key_another_task_holds_is_left_to_it_and_the_rest_of_the_batch_goes_out(
    ctx: DeliveryContext, target: PushTarget
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(3)]
    accept(ctx, [change(k, 1) for k in keys])
    held = LaneLock(ctx.redis, lanes_of(keys[1:2])[0].lock_key(ctx.settings.redis_prefix), "other-task", 60)
    assert held.acquire()
    try:
        outcome = deliver_lanes(ctx, lanes_of(keys), owner="batch")
    finally:
        held.release()
    assert outcome == BatchOutcome(delivered=2, busy=(keys[1],))
    assert states(ctx, keys)[keys[1]] == [(1, "pending", 0)]
    assert sorted(target.ids()) == sorted(f"{DIVISION}:Accounts:{k}:1:Update" for k in (keys[0], keys[2]))
    for lane in lanes_of(keys):
        assert ctx.redis.exists(lane.lock_key(ctx.settings.redis_prefix)) == 0  # released, the held one by its owner


def breaker_settings(settings: Settings, server: ServerThread) -> Settings:
    """Push to `server` with a breaker that opens after two failures and stays open for an hour."""
    return push_settings(
        settings,
        f"{server.url}/push",
        delivery_max_attempts=50,
        delivery_breaker_failures=2,
        delivery_breaker_cooldown_seconds=3600.0,
    )


def test_when_the_breaker_opens_mid_batch_the_rest_waits_unsent_and_uncounted(
    settings: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    scripted = ScriptedTarget(status=503)
    with serve_scripted(scripted) as server:
        push = breaker_settings(settings, server)
        ctx = DeliveryContext.build(push, session_factory, redis_client)
        keys = [str(uuid.uuid4()) for _ in range(6)]
        accept(ctx, [change(k, 1) for k in keys])
        outcome = deliver_lanes(ctx, lanes_of(keys), owner="breaker")
    assert scripted.requests == 2  # two failures open the breaker: no POST for the other four
    assert outcome.delivered == 0
    assert set(outcome.retry) == set(keys)
    assert sum(wait > 3000 for wait in outcome.retry.values()) == 4  # held for the cooldown
    attempts = sorted(s[0][2] for s in states(ctx, keys).values())
    assert attempts == [0, 0, 0, 0, 1, 1]  # every attempt counted is a POST that was made
    assert {s[0][1] for s in states(ctx, keys).values()} == {"pending"}


def test_dispatch_batches_lanes_by_sink_division_and_topic() -> None:
    accounts = [PushLane("http", 1, "Accounts", str(n)) for n in range(250)]
    items = [PushLane("http", 1, "Items", str(n)) for n in range(3)]
    other = [PushLane("crm", 1, "Accounts", "0")]
    found = batches([*accounts, *items, accounts[0], *other], 100)
    assert [len(b) for b in found] == [100, 100, 50, 3, 1]
    assert [lane for b in found[:3] for lane in b] == accounts  # in their order, each once
    assert all(len({(lane.sink, lane.division, lane.topic) for lane in b}) == 1 for b in found)


def test_retries_are_grouped_by_the_second_their_wait_ends_in() -> None:
    groups = retry_groups({"a": 0.2, "b": 0.9, "c": 1.5, "d": 4.0})
    assert groups == [(0.9, ["a", "b"]), (1.5, ["c"]), (4.0, ["d"])]


def test_a_healthy_target_gets_a_few_posts_side_by_side_never_more_than_the_sink_allows(
    settings: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    scripted = ScriptedTarget(status=204, delay_seconds=0.3)
    with serve_scripted(scripted) as server:
        ctx = DeliveryContext.build(push_settings(settings, f"{server.url}/push"), session_factory, redis_client)
        keys = [str(uuid.uuid4()) for _ in range(12)]
        accept(ctx, [change(k, 1) for k in keys])
        assert deliver_lanes(ctx, lanes_of(keys), owner="side-by-side") == BatchOutcome(delivered=12)
    allowed = ctx.push_sinks["http"].concurrent_pushes  # type: ignore[attr-defined]
    assert 2 <= scripted.max_in_flight() <= allowed
    assert sorted(s.webhook_id for s in scripted.seen) == sorted(f"{DIVISION}:Accounts:{k}:1:Update" for k in keys)


def test_after_a_probe_goes_through_the_rest_of_the_batch_follows_in_one_round(
    settings: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis, engine: Engine
) -> None:
    scripted = ScriptedTarget(status=503)
    with serve_scripted(scripted) as server:
        push = breaker_settings(settings, server)
        ctx = DeliveryContext.build(push, session_factory, redis_client)
        keys = [str(uuid.uuid4()) for _ in range(7)]
        accept(ctx, [change(k, 1) for k in keys])
        deliver_lanes(ctx, lanes_of(keys), owner="opens")  # two failures open the breaker
        for key in redis_client.scan_iter(match=f"{push.redis_prefix}breaker:*:open"):
            redis_client.delete(key)  # the cooldown is over: half-open
        with ctx.sessions() as session, session.begin():
            session.execute(update(Delivery).where(Delivery.key.in_(keys)).values(due_at=utc_now()))
        scripted.status = 204
        with counted(ctx, engine) as (counting, counts):
            assert deliver_lanes(counting, lanes_of(keys), owner="probe") == BatchOutcome(delivered=7)
    assert scripted.requests == 2 + 7
    # The probe's round (sending, delivered), then every other key in one more round: not a round a key.
    assert counts["commits"] == 4
