"""Pruning the delivery log: old delivered and superseded rows go, in batches; what ordering and replay need stays."""

from __future__ import annotations

import uuid
from datetime import timedelta

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import Delivery
from delivery.outbox import PushLane
from delivery.push import DeliveryContext, LaneOutcome, deliver_lane
from delivery.retention import prune_deliveries
from runtime.contracts import DELIVERIES_QUEUE, PRUNE_DELIVERIES
from runtime.db import utc_now
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.pipeline.push_support import PushTarget, push_settings
from workers.celery_app import make_celery

DIVISION = 9191


def change(key: str, version: int) -> ChangeRecord:
    return ChangeRecord(DIVISION, "Items", key, "Update", {"ID": key, "v": version}, version)


def rows(sessions: sessionmaker[Session], key: str) -> list[tuple[int, str]]:
    with sessions() as session:
        found = session.execute(
            select(Delivery.version, Delivery.state).where(Delivery.key == key).order_by(Delivery.version)
        )
        return [(v, s) for v, s in found]


def test_old_delivered_and_superseded_rows_go_and_each_keys_newest_stays(
    settings: Settings,
    server: ServerThread,
    target: PushTarget,
    session_factory: sessionmaker[Session],
    redis_client: redis.Redis,
) -> None:
    ctx = DeliveryContext.build(push_settings(settings, f"{server.url}/push"), session_factory, redis_client)
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    with session_factory() as session, session.begin():
        delivery.accept(session, [change(old, v) for v in (1, 2, 3, 4, 5, 6)] + [change(recent, 1)], ctx.settings)
    states = {1: "delivered", 2: "superseded", 3: "delivered", 4: "delivered", 5: "dead", 6: "pending"}
    long_ago = utc_now() - timedelta(days=40)
    with session_factory() as session, session.begin():
        for version, state in states.items():
            session.execute(
                update(Delivery)
                .where(Delivery.key == old, Delivery.version == version)
                .values(state=state, updated_at=long_ago, due_at=long_ago)
            )
        session.execute(update(Delivery).where(Delivery.key == recent).values(state="delivered"))
    # Batches of one, so the loop over batches is what removes all three.
    assert prune_deliveries(session_factory, 30.0, batch=1) == 3
    # v4 is the lane's newest delivered: the mark later versions are ordered against. Dead and pending rows are work.
    assert rows(session_factory, old) == [(4, "delivered"), (5, "dead"), (6, "pending")]
    assert rows(session_factory, recent) == [(1, "delivered")]
    assert prune_deliveries(session_factory, 30.0) == 0
    assert prune_deliveries(session_factory, 0) == 0  # 0 keeps every row

    # A pruned version accepted again (a re-fetch) is superseded against the kept mark, never sent out of order.
    with session_factory() as session, session.begin():
        delivery.accept(session, [change(old, 3)], ctx.settings)
        session.execute(update(Delivery).where(Delivery.key == old, Delivery.version == 6).values(due_at=utc_now()))
    outcome = deliver_lane(ctx, PushLane("http", DIVISION, "Items", old), owner="after-prune")
    assert outcome == LaneOutcome(delivered=1, superseded=1)
    assert target.versions(old) == [6]


def test_beat_prunes_on_the_deliveries_queue(settings: Settings) -> None:
    schedule = make_celery(settings).conf.beat_schedule
    [entry] = [e for e in schedule.values() if e["task"] == PRUNE_DELIVERIES]
    assert entry["options"]["queue"] == DELIVERIES_QUEUE
