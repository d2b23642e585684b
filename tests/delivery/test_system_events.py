"""Operational System events: each episode found is pushed once to the mirror and to an http target, a new episode
again; the detection runs directly against the real database and Redis, as beat's check would."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connections.context import ConnectionContext
from connections.models import Connection
from delivery import outbox
from delivery.changes import ChangeRecord
from delivery.models import Delivery, DeliveryState, MirrorRecord
from delivery.outbox import PushLane
from delivery.push import DeliveryContext, deliver_lane
from delivery.system_events import (
    CONSENT_NEEDED,
    DEAD_LETTER,
    LANE_STUCK,
    SUBSCRIPTION_SILENT,
    emit_consent_needed,
)
from runtime.db import utc_now
from runtime.settings import Settings
from subscriptions.models import Subscription
from sync.checks import check
from tests.conftest import ServerThread
from tests.factories import create_connection, create_subscription
from tests.pipeline import fresh_db
from tests.pipeline.push_support import PushTarget, push_settings

# A database of its own per test: another test's connections, subscriptions or dead letters would be episodes too.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory


@pytest.fixture
def push(settings: Settings, server: ServerThread) -> Settings:
    return push_settings(settings, f"{server.url}/push", lane_stuck_minutes=30.0)


@pytest.fixture
def ctx(push: Settings, session_factory: sessionmaker[Session], redis_client: redis.Redis) -> ConnectionContext:
    return ConnectionContext(push, session_factory, redis_client)


def system_rows(ctx: ConnectionContext, topic: str) -> list[Delivery]:
    with ctx.sessions() as session:
        return list(session.scalars(select(Delivery).where(Delivery.topic == topic).order_by(Delivery.id)))


def deliver_all(ctx: ConnectionContext, topic: str) -> None:
    delivering = DeliveryContext.build(ctx.settings, ctx.sessions, ctx.redis)
    for lane in {PushLane(r.sink, r.division, r.topic, r.key) for r in system_rows(ctx, topic)}:
        deliver_lane(delivering, lane, owner="test")


def received(target: PushTarget, topic: str) -> list[dict]:  # type: ignore[type-arg]
    return [a.payload for a in target.accepted if a.payload["type"] == f"exact.{topic}.updated"]


def mirrored(ctx: ConnectionContext, topic: str) -> list[MirrorRecord]:
    with ctx.sessions() as session:
        return list(session.scalars(select(MirrorRecord).where(MirrorRecord.topic == topic)))


def test_consent_needed_is_pushed_once_per_episode(ctx: ConnectionContext, target: PushTarget) -> None:
    with ctx.sessions() as session, session.begin():
        connection = create_connection(session)
        connection.needs_consent, connection.consent_error = True, "refresh token refused: invalid_grant"
        connection_id = connection.id
    assert emit_consent_needed(ctx.settings, ctx.sessions) == 1
    assert emit_consent_needed(ctx.settings, ctx.sessions) == 0  # every later task of the episode
    assert check(ctx) == 0
    deliver_all(ctx, CONSENT_NEEDED)
    [pushed] = received(target, CONSENT_NEEDED)
    assert pushed["data"]["record"] | {"since": None} == {
        "event": "consent_needed",
        "connection": connection_id,
        "error": "refresh token refused: invalid_grant",
        "since": None,
        "fix": "run `exact-pipeline connect`",
    }

    # A reconnect (the token version moves on), then consent lost again: a new episode.
    with ctx.sessions() as session, session.begin():
        session.execute(update(Connection).values(version=Connection.version + 1))
    assert emit_consent_needed(ctx.settings, ctx.sessions) == 1
    deliver_all(ctx, CONSENT_NEEDED)
    assert len(received(target, CONSENT_NEEDED)) == 2
    assert [r.version for r in mirrored(ctx, CONSENT_NEEDED)] == [2]


def test_a_silent_subscription_is_pushed_once_per_silence(ctx: ConnectionContext, target: PushTarget) -> None:
    with ctx.sessions() as session, session.begin():
        pair = create_subscription(session, topic="Contacts")
        pair.created_at = utc_now() - timedelta(hours=ctx.settings.silent_subscription_hours + 1)
        create_subscription(session, topic="Accounts")  # just made: not silent
    assert check(ctx) == 1
    assert check(ctx) == 0
    deliver_all(ctx, SUBSCRIPTION_SILENT)
    [pushed] = received(target, SUBSCRIPTION_SILENT)
    assert pushed["data"]["record"]["topic"] == "Contacts"
    assert pushed["data"]["record"]["division"] == 101

    # A webhook ends the episode; silence after it is another.
    with ctx.sessions() as session, session.begin():
        later = utc_now() - timedelta(hours=ctx.settings.silent_subscription_hours + 0.5)
        session.execute(update(Subscription).where(Subscription.topic == "Contacts").values(last_webhook_at=later))
    assert check(ctx) == 1
    assert len(system_rows(ctx, SUBSCRIPTION_SILENT)) == 2


def accept_one(ctx: ConnectionContext) -> str:
    key = str(uuid.uuid4())
    with ctx.sessions() as session, session.begin():
        change = ChangeRecord(101, "Accounts", key, "Update", {"ID": key}, 1)
        outbox.accept(session, [change], ctx.settings)
    return key


def test_a_dead_letter_is_pushed_once_and_never_about_itself(ctx: ConnectionContext, target: PushTarget) -> None:
    key = accept_one(ctx)
    with ctx.sessions() as session, session.begin():
        session.execute(
            update(Delivery).where(Delivery.key == key).values(state=DeliveryState.DEAD, attempts=4, last_error="503")
        )
    assert check(ctx) == 1
    assert check(ctx) == 0
    [row] = system_rows(ctx, DEAD_LETTER)
    assert row.sink == "http"
    # The target is down, so the dead letter's own push dies too: no event about that one.
    with ctx.sessions() as session, session.begin():
        session.execute(update(Delivery).where(Delivery.id == row.id).values(state=DeliveryState.DEAD))
    assert check(ctx) == 0
    with ctx.sessions() as session, session.begin():
        session.execute(update(Delivery).where(Delivery.id == row.id).values(state=DeliveryState.PENDING))
    deliver_all(ctx, DEAD_LETTER)
    [pushed] = received(target, DEAD_LETTER)
    record = pushed["data"]["record"]
    assert (record["key"], record["sink"], record["attempts"], record["last_error"]) == (key, "http", 4, "503")


def test_a_stuck_lane_is_pushed_once_per_stuck_head(ctx: ConnectionContext, target: PushTarget) -> None:
    key, fresh = accept_one(ctx), accept_one(ctx)
    long_ago = utc_now() - timedelta(minutes=ctx.settings.lane_stuck_minutes + 1)
    with ctx.sessions() as session, session.begin():
        session.execute(update(Delivery).where(Delivery.key == key).values(created_at=long_ago))
    assert check(ctx) == 1  # the fresh lane waits less than the bound
    assert check(ctx) == 0
    deliver_all(ctx, LANE_STUCK)
    [pushed] = received(target, LANE_STUCK)
    assert pushed["data"]["record"] | {"since": None} == {
        "event": "lane_stuck",
        "sink": "http",
        "division": 101,
        "topic": "Accounts",
        "key": key,
        "pending": 1,
        "since": None,
        "stuck_minutes": ctx.settings.lane_stuck_minutes,
    }
    assert fresh not in {r.key for r in system_rows(ctx, LANE_STUCK)}


def test_without_the_mirror_an_episode_is_still_one_delivery(ctx: ConnectionContext, target: PushTarget) -> None:
    ctx.settings = ctx.settings.model_copy(update={"sinks": "http"})
    with ctx.sessions() as session, session.begin():
        create_connection(session).needs_consent = True
    for _ in range(3):
        emit_consent_needed(ctx.settings, ctx.sessions)
    assert [r.sink for r in system_rows(ctx, CONSENT_NEEDED)] == ["http"]
    assert mirrored(ctx, CONSENT_NEEDED) == []
