"""The tracked-pairs cache: misses share reloads, removed pairs drop out, an unreadable database is an error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from receiver.tracking import TrackedPairs, TrackingUnavailable
from runtime.db import make_engine
from subscriptions.models import Subscription
from tests.factories import create_subscription
from tests.receiver.builders import signed_webhook
from tests.receiver.conftest import Receiver


@pytest.fixture
def counted_engine(database_url: str) -> Iterator[tuple[Engine, list[str]]]:
    """A private engine that records every statement it runs."""
    engine = make_engine(database_url)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    yield engine, statements
    engine.dispose()


class TestTrackedPairs:
    def test_topics_compare_case_insensitively(self, counted_engine: tuple[Engine, list[str]], tracked: None) -> None:
        engine, _ = counted_engine

        async def scenario() -> tuple[bool, bool]:
            pairs = TrackedPairs(engine)
            await pairs.refresh()
            return await pairs.tracks(441609, "salesorders"), await pairs.tracks(441609, "Accounts")

        assert asyncio.run(scenario()) == (True, False)

    def test_concurrent_misses_share_reloads(self, counted_engine: tuple[Engine, list[str]], tracked: None) -> None:
        engine, statements = counted_engine

        async def scenario() -> list[bool]:
            pairs = TrackedPairs(engine, min_gap=1.0)
            await pairs.refresh()
            statements.clear()
            return await asyncio.gather(*(pairs.tracks(424242, "Accounts") for _ in range(50)))

        assert asyncio.run(scenario()) == [False] * 50
        # The first miss waits out the gap since the refresh; the other 49 arrive meanwhile and share its reload.
        assert len([s for s in statements if "subscriptions" in s]) == 1

    def test_a_hit_reads_nothing(self, counted_engine: tuple[Engine, list[str]], tracked: None) -> None:
        engine, statements = counted_engine

        async def scenario() -> list[bool]:
            pairs = TrackedPairs(engine)
            await pairs.refresh()
            statements.clear()
            return [await pairs.tracks(101, "Accounts") for _ in range(20)]

        assert asyncio.run(scenario()) == [True] * 20
        assert statements == []

    def test_an_unreadable_database_is_tracking_unavailable(self, tmp_path: Path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}")

        async def scenario() -> bool:
            return await TrackedPairs(engine).tracks(101, "Accounts")

        with pytest.raises(TrackingUnavailable):
            asyncio.run(scenario())
        engine.dispose()


class TestThroughTheReceiver:
    def test_a_pair_registered_a_moment_ago_is_tracked(
        self, receiver: Receiver, session_factory: sessionmaker[Session]
    ) -> None:
        assert receiver.post(signed_webhook(Division=777)).json()["outcome"] == "untracked"
        with session_factory() as session, session.begin():
            create_subscription(session, division=777)
        assert receiver.post(signed_webhook(Division=777)).json()["outcome"] == "enqueued"

    def test_a_removed_pair_stops_being_tracked(
        self, receiver: Receiver, session_factory: sessionmaker[Session]
    ) -> None:
        with session_factory() as session, session.begin():
            row = create_subscription(session, division=778)
        assert receiver.post(signed_webhook(Division=778)).json()["outcome"] == "enqueued"
        with session_factory() as session, session.begin():
            session.execute(update(Subscription).where(Subscription.id == row.id).values(state="removed"))
        deadline = time.monotonic() + 30  # the background refresh runs every few seconds
        while receiver.post(signed_webhook(Division=778)).json()["outcome"] != "untracked":
            assert time.monotonic() < deadline, "the removed pair is still tracked"
            time.sleep(0.2)
