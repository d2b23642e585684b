"""The safety net against the sandbox: one sync/Deleted call per division and cycle dispatched by EntityType, lanes a
flush walked skipped, quiet healthy lanes backed off to the bound, and back to base on a change or a silent webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from exact import CATALOGUE, ExactUnavailable
from runtime.db import session_scope
from runtime.settings import Settings
from sandbox.config import SandboxConfig
from subscriptions.models import Subscription
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.cycle import LanesBusy, safety_net
from sync.safety_net import DivisionRun, is_due, max_level, next_level, phase
from sync.tasks import fan_out_divisions, sync_division
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.connected import connect_to
from tests.sync.lanes import control, make_ctx, mirror, subscribe, tombstones

database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
TOPICS = ("Accounts", "Contacts", "Items", "SalesInvoices")
DIVISION = 101
# Base 15 minutes, bound 60: levels 0, 1, 2, i.e. walks every 1, 2 or 4 cycles.
TOP = 2


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(minute_limit=1000)  # cycles back to back, not a day apart


@pytest.fixture
def ctx(
    settings: Settings, sandbox: ServerThread, session_factory: sessionmaker[Session], redis_client: redis.Redis
) -> WorkerContext:
    return make_ctx(
        settings, sandbox, session_factory, redis_client, delta_sync_max_minutes=60.0, rate_limit_per_minute=1000
    )


@pytest.fixture
def connection_id(ctx: WorkerContext) -> int:
    connection_id = connect_to(ctx.settings)
    subscribe(ctx.sessions, connection_id, DIVISION, TOPICS)
    return connection_id


def _counts(ctx: WorkerContext) -> dict[str, int]:
    """Calls so far per endpoint (any division), and per budget class under `class:<name>`."""
    body = control(ctx, "GET", "calls").json()
    counts: dict[str, int] = {}
    for row in body["calls"]:
        counts[row["endpoint"]] = counts.get(row["endpoint"], 0) + int(row["count"])
    for name, count in body["classes"].items():
        counts[f"class:{name}"] = int(count)
    return counts


def _cycle(ctx: WorkerContext) -> tuple[list[DivisionRun], dict[str, int]]:
    """One cycle run in-process, as the worker runs it; returns the runs and the calls they made per endpoint."""
    before = _counts(ctx)
    runs: list[DivisionRun] = []
    fan_out_divisions(ctx, runs.append)
    for run in runs:
        sync_division(ctx, run, owner="test")
    after = _counts(ctx)
    return runs, {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _walked(spent: dict[str, int], topic: str) -> bool:
    sync_path = CATALOGUE.require(topic).sync_path
    return spent.get(str(sync_path), 0) > 0


def _levels(ctx: WorkerContext, connection_id: int) -> dict[str, int]:
    lanes = [Lane(connection_id, DIVISION, t) for t in TOPICS]
    return {lane.topic: level for lane, level in safety_net(ctx).levels(lanes).items()}


def _key(ctx: WorkerContext, topic: str) -> str:
    entity = CATALOGUE.require(topic)
    rows = control(ctx, "GET", f"records/{DIVISION}/{entity.path}").json()["records"]
    return str(rows[0][entity.key]).lower()


def test_the_schedule_nests_and_backs_off_to_the_bound() -> None:
    assert [max_level(15, bound) for bound in (120, 100, 60, 15, 10)] == [3, 2, 2, 0, 0]
    at = phase(1, 101)
    for cycle in range(64):
        # A lane at a higher level is due only where every lower level is due: one sync/Deleted call serves them.
        for level in range(1, 4):
            assert not is_due(level, cycle, at) or is_due(level - 1, cycle, at)
    assert sum(is_due(3, cycle, at) for cycle in range(64)) == 8
    assert next_level(1, found=False, healthy=True, top=2) == 2
    assert next_level(2, found=False, healthy=True, top=2) == 2
    assert next_level(2, found=True, healthy=True, top=2) == 0
    assert next_level(2, found=False, healthy=False, top=2) == 0
    run = DivisionRun(1, 101, walk=("Accounts",), full=("Items",), deleted=("Accounts", "Contacts"), healthy=())
    assert DivisionRun.of(run.args()) == run


def test_one_deleted_call_a_division_and_each_row_reaches_its_own_lane(ctx: WorkerContext, connection_id: int) -> None:
    runs, spent = _cycle(ctx)  # the first cycle: every lane due, walked from the start
    assert [(r.division, sorted(r.walk)) for r in runs] == [(DIVISION, sorted(TOPICS))]
    assert spent["sync/Deleted"] == 1
    gone = {topic: _key(ctx, topic) for topic in ("Accounts", "Contacts", "SalesInvoices")}
    for topic, key in gone.items():
        control(ctx, "DELETE", f"records/{DIVISION}/{CATALOGUE.require(topic).path}/{key}")
    runs, spent = _cycle(ctx)
    assert spent["sync/Deleted"] == 1
    for topic in TOPICS:
        assert tombstones(ctx, DIVISION, topic) == ({gone[topic]} if topic in gone else set())
        assert gone.get(topic, "") not in mirror(ctx, DIVISION, topic)
    # Every call of a cycle spends from the delta sync's budget class.
    assert spent["class:delta"] == sum(v for k, v in spent.items() if not k.startswith("class:"))


def test_a_quiet_healthy_lane_backs_off_to_the_bound_and_a_lost_webhook_brings_it_back(
    ctx: WorkerContext, connection_id: int
) -> None:
    walks: list[int] = []
    for cycle in range(14):
        _, spent = _cycle(ctx)
        if _walked(spent, "Accounts"):
            walks.append(cycle)
        # Walked or not, the division's lanes move together: one sync/Deleted call at most per cycle.
        assert spent.get("sync/Deleted", 0) == (1 if _walked(spent, "Accounts") else 0)
    gaps = [b - a for a, b in zip(walks, walks[1:], strict=False)]
    assert max(gaps) == 1 << TOP
    assert gaps[-2:] == [1 << TOP, 1 << TOP]
    assert _levels(ctx, connection_id) == dict.fromkeys(TOPICS, TOP)
    # A change whose webhook never came: found at the lane's next due cycle, within the bound, and back to base.
    key = _key(ctx, "Accounts")
    control(ctx, "PUT", f"records/{DIVISION}/crm/Accounts/{key}", json={"Name": "renamed, webhook lost"})
    for _ in range(1 << TOP):
        _cycle(ctx)
        if mirror(ctx, DIVISION, "Accounts")[key]["Name"] == "renamed, webhook lost":
            break
    else:
        pytest.fail("the change did not arrive within the bound")
    assert _levels(ctx, connection_id) == {**dict.fromkeys(TOPICS, TOP), "Accounts": 0}
    runs, _ = _cycle(ctx)  # at base the lane is due every cycle, whatever its division's phase
    assert [r.walk for r in runs] == [("Accounts",)]


def test_going_silent_sends_a_lane_back_to_base_once_and_a_webhookless_one_stays_there(
    ctx: WorkerContext, connection_id: int
) -> None:
    for _ in range(8):
        _cycle(ctx)
    assert _levels(ctx, connection_id) == dict.fromkeys(TOPICS, TOP)
    long_ago = datetime.now(UTC) - timedelta(hours=ctx.settings.silent_subscription_hours + 1)
    with session_scope(ctx.sessions) as session:
        session.execute(
            update(Subscription).where(Subscription.topic == "Contacts").values(created_at=long_ago)
        )  # no webhook since: silent
        session.execute(update(Subscription).where(Subscription.topic == "Items").values(state="sync_only"))
    runs, _ = _cycle(ctx)
    [run] = runs  # the silent lane is walked at base at once, whatever its level and its division's phase
    assert {"Contacts", "Items"} <= set(run.walk)
    assert _levels(ctx, connection_id)["Contacts"] == 0
    for _ in range(8):
        runs, _ = _cycle(ctx)
        # A lane without webhooks (sync_only) is walked every cycle.
        assert [run.walk for run in runs if "Items" in run.walk] != []
    levels = _levels(ctx, connection_id)
    assert levels["Items"] == 0
    # Silent, and the walks at base found nothing: the division is idle, not deaf, and backs off again.
    assert levels["Contacts"] == TOP
    assert levels["Accounts"] == levels["SalesInvoices"] == TOP
    # A webhook heard, then silence again: a new episode, so back to base once more.
    ctx.redis.hset(f"{ctx.settings.redis_prefix}last-webhook", f"{DIVISION}:contacts", int(long_ago.timestamp()) + 60)
    runs, _ = _cycle(ctx)
    assert "Contacts" in next(run.walk for run in runs)
    assert _levels(ctx, connection_id)["Contacts"] == 0


def test_a_lane_its_flush_walked_within_the_interval_is_not_walked_again(
    ctx: WorkerContext, connection_id: int
) -> None:
    _cycle(ctx)
    lane = Lane(connection_id, DIVISION, "Accounts")
    # A webhook flush of the lane, as `flush_lane` runs it: it walked the sync cursor and ended just now.
    assert ctx.coalescer.add(lane, _key(ctx, "Accounts"), "Update", 4_102_444_800_000) == "schedule"
    ctx.lane_sync(lane).flush(ctx.coalescer.take(lane))
    ctx.coalescer.done(lane)
    run = DivisionRun(connection_id, DIVISION, walk=TOPICS, deleted=TOPICS, healthy=TOPICS)
    before = _counts(ctx)
    sync_division(ctx, run, owner="test")
    spent = {k: v - before.get(k, 0) for k, v in _counts(ctx).items()}
    assert not _walked(spent, "Accounts")
    assert all(_walked(spent, t) for t in TOPICS if t != "Accounts")
    assert spent["sync/Deleted"] == 1  # its deletes are still read, with the rest


def test_a_held_lane_is_left_for_the_retry_and_the_others_are_done(ctx: WorkerContext, connection_id: int) -> None:
    held = ctx.coalescer.lock(Lane(connection_id, DIVISION, "Contacts"), "a flush", ttl_seconds=30)
    assert held.acquire()
    run = DivisionRun(connection_id, DIVISION, walk=TOPICS, deleted=TOPICS, healthy=TOPICS)
    with pytest.raises(LanesBusy) as busy:
        sync_division(ctx, run, owner="test")
    assert busy.value.rest == DivisionRun(
        connection_id, DIVISION, walk=("Contacts",), deleted=("Contacts",), healthy=TOPICS
    )
    assert mirror(ctx, DIVISION, "Accounts")
    assert not mirror(ctx, DIVISION, "Contacts")
    held.release()
    sync_division(ctx, busy.value.rest, owner="retry")
    assert mirror(ctx, DIVISION, "Contacts")


def test_a_moved_division_resyncs_its_lanes_in_the_backfill_class(ctx: WorkerContext, connection_id: int) -> None:
    _cycle(ctx)
    control(ctx, "POST", f"divisions/{DIVISION}", json={"move": True})
    runs, spent = _cycle(ctx)
    if not runs:  # the lanes are at level 1 after one walk: due within two cycles
        runs, spent = _cycle(ctx)
    assert [sorted(r.full) for r in runs] == [sorted(TOPICS)]
    assert runs[0].deleted == ()
    assert spent["class:backfill"] > 0
    for topic in TOPICS:
        assert ctx.cursors.get(connection_id, DIVISION, topic).timestamp > 0
    runs, _ = _cycle(ctx)
    assert all(not r.full for r in runs)


def test_exact_down_stops_the_run_at_its_first_failed_request(ctx: WorkerContext, connection_id: int) -> None:
    control(ctx, "POST", "faults", json={"kind": "error", "status": 500, "count": 100_000})
    run = DivisionRun(connection_id, DIVISION, walk=TOPICS, deleted=TOPICS, healthy=TOPICS)
    with pytest.raises(ExactUnavailable):
        sync_division(ctx, run, owner="test")
    control(ctx, "DELETE", "faults")
    failed = {row["endpoint"] for row in control(ctx, "GET", "calls").json()["calls"] if row["status"] == 500}
    assert failed == {CATALOGUE.require(TOPICS[0]).sync_path}  # no other lane, no sync/Deleted call
    assert _levels(ctx, connection_id) == {}  # nothing settled: the lanes stay due
