"""The circuit breaker per push target, through `deliver_lane` against a real target, Redis and database."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import Delivery
from delivery.outbox import PushLane
from delivery.push import DeliveryContext, LaneOutcome, deliver_lane
from runtime.db import utc_now
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.pipeline.push_support import push_settings
from tests.pipeline.target_support import ScriptedTarget, serve_scripted

DIVISION = 4242
LANES = 6


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedTarget, ServerThread]]:
    target = ScriptedTarget(status=503)
    with serve_scripted(target) as server:
        yield target, server


@pytest.fixture
def ctx(
    settings: Settings,
    scripted: tuple[ScriptedTarget, ServerThread],
    session_factory: sessionmaker[Session],
    redis_client: redis.Redis,
) -> DeliveryContext:
    push = push_settings(
        settings,
        f"{scripted[1].url}/push",
        delivery_max_attempts=50,
        delivery_breaker_failures=2,
        delivery_breaker_cooldown_seconds=3600.0,
    )
    return DeliveryContext.build(push, session_factory, redis_client)


def accept(ctx: DeliveryContext, keys: list[str]) -> None:
    changes = [ChangeRecord(DIVISION, "Accounts", k, "Update", {"ID": k}, 1) for k in keys]
    with ctx.sessions() as session, session.begin():
        delivery.accept(session, changes, ctx.settings)


def lane(key: str) -> PushLane:
    return PushLane("http", DIVISION, "Accounts", key)


def attempts(ctx: DeliveryContext, keys: list[str]) -> int:
    with ctx.sessions() as session:
        return sum(session.scalars(select(Delivery.attempts).where(Delivery.key.in_(keys))))


def end_cooldown(ctx: DeliveryContext, keys: list[str]) -> None:
    """What the passing of the cooldown does: the breaker's open key expires, and the held rows fall due."""
    for key in ctx.redis.scan_iter(match=f"{ctx.settings.redis_prefix}breaker:*:open"):
        ctx.redis.delete(key)
    with ctx.sessions() as session, session.begin():
        session.execute(update(Delivery).where(Delivery.key.in_(keys)).values(due_at=utc_now()))


def run_all_at_once(ctx: DeliveryContext, keys: list[str]) -> list[LaneOutcome]:
    """Every lane's task at the same moment, as workers woken by one cooldown's end would run them."""
    outcomes: dict[str, LaneOutcome] = {}
    threads = [
        threading.Thread(target=lambda k=k: outcomes.__setitem__(k, deliver_lane(ctx, lane(k), f"t-{k}"))) for k in keys
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return [outcomes[k] for k in keys]


def test_a_dead_target_costs_one_probe_per_cooldown_not_a_post_per_delivery(
    ctx: DeliveryContext, scripted: tuple[ScriptedTarget, ServerThread]
) -> None:
    target = scripted[0]
    keys = [str(uuid.uuid4()) for _ in range(LANES)]
    accept(ctx, keys)
    outcomes = [deliver_lane(ctx, lane(k), owner=f"first-{k}") for k in keys]
    # Two failures open the breaker; the other lanes wait for the cooldown without a POST or a spent attempt.
    assert target.requests == 2
    assert all(o.retry_in is not None and o.delivered == 0 for o in outcomes)
    assert all(o.retry_in is not None and o.retry_in > 3000 for o in outcomes[2:])
    assert attempts(ctx, keys) == 2

    target.delay_seconds = 0.5  # so that the lanes' tasks overlap while the probe is out
    end_cooldown(ctx, keys)
    outcomes = run_all_at_once(ctx, keys)
    assert target.requests == 3, "one probe after the cooldown, not one POST per waiting delivery"
    assert all(o.retry_in is not None for o in outcomes)  # the probe failed: open again, every lane waits
    assert attempts(ctx, keys) == 3

    target.status, target.delay_seconds = 204, 0.0
    end_cooldown(ctx, keys)
    run_all_at_once(ctx, keys)  # one probe succeeds and closes the breaker; the rest follow shortly
    end_cooldown(ctx, keys)
    for k in keys:
        deliver_lane(ctx, lane(k), owner=f"last-{k}")
    with ctx.sessions() as session:
        states = list(session.scalars(select(Delivery.state).where(Delivery.key.in_(keys))))
    assert states == ["delivered"] * LANES
    assert target.requests == 3 + LANES
    assert attempts(ctx, keys) == target.requests  # every attempt counted is a POST that was made
    assert sorted(s.webhook_id for s in target.seen[3:]) == sorted(f"{DIVISION}:Accounts:{k}:1:Update" for k in keys)


def test_a_retry_after_of_inf_waits_the_cap_and_does_not_crash(
    ctx: DeliveryContext, scripted: tuple[ScriptedTarget, ServerThread]
) -> None:
    target = scripted[0]
    target.headers = {"Retry-After": "inf"}
    key = str(uuid.uuid4())
    accept(ctx, [key])
    outcome = deliver_lane(ctx, lane(key), owner="inf")
    assert outcome.retry_in is not None
    assert outcome.retry_in <= ctx.settings.delivery_backoff_max_seconds
    with ctx.sessions() as session:
        row = session.scalars(select(Delivery).where(Delivery.key == key)).one()
    assert (row.state, row.attempts) == ("pending", 1)
