"""Lane cursors in the database: monotonic advances, resets that a walk begun earlier cannot undo, move dates."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.orm import Session, sessionmaker

from runtime.settings import Settings
from sync.cursors import Cursor, CursorStore
from tests.conftest import ServerThread
from tests.pipeline.connected import connect_to

_topics = (f"Topic{n}" for n in itertools.count())


@pytest.fixture
def connection_id(settings: Settings, sandbox: ServerThread) -> int:
    return connect_to(settings.model_copy(update={"exact_base_url": sandbox.url}))


def test_a_new_lane_starts_at_zero_and_only_moves_forward(
    session_factory: sessionmaker[Session], connection_id: int
) -> None:
    cursors, topic = CursorStore(session_factory), next(_topics)
    assert cursors.get(connection_id, 101, topic) == Cursor()
    assert cursors.advance(connection_id, 101, topic, generation=0, timestamp=50, modified_ms=7)
    # A late or duplicate walk reports older positions: nothing moves back.
    assert cursors.advance(connection_id, 101, topic, generation=0, timestamp=20, deleted_timestamp=3)
    assert cursors.get(connection_id, 101, topic) == Cursor(timestamp=50, modified_ms=7, deleted_timestamp=3)
    # Lanes are separate per division and topic.
    assert cursors.get(connection_id, 202, topic) == Cursor()


def test_a_reset_wins_over_a_walk_that_began_before_it(
    session_factory: sessionmaker[Session], connection_id: int
) -> None:
    cursors, topic = CursorStore(session_factory), next(_topics)
    cursors.advance(connection_id, 101, topic, generation=0, timestamp=50)
    started = cursors.get(connection_id, 101, topic)
    cursors.reset(connection_id, 101, topic)
    assert not cursors.advance(connection_id, 101, topic, generation=started.generation, timestamp=90)
    assert cursors.get(connection_id, 101, topic) == Cursor(generation=started.generation + 1)


def test_a_changed_division_move_date_resets_the_lane(
    session_factory: sessionmaker[Session], connection_id: int
) -> None:
    cursors, topic = CursorStore(session_factory), next(_topics)
    cursors.advance(connection_id, 101, topic, generation=0, timestamp=50)
    # First sight: remembered, nothing reset (the lane's cursor already reflects this division).
    assert not cursors.note_move_date(connection_id, 101, topic, None)
    assert not cursors.note_move_date(connection_id, 101, topic, None)
    assert cursors.get(connection_id, 101, topic).timestamp == 50
    assert cursors.note_move_date(connection_id, 101, topic, "2026-11-23T00:00:00.000Z")
    assert cursors.get(connection_id, 101, topic) == Cursor(generation=1)
    assert not cursors.note_move_date(connection_id, 101, topic, "2026-11-23T00:00:00.000Z")
