"""The `sql` sink and `accept`: the mirror never goes back a version, and the same change twice is one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import Delivery, MirrorRecord
from runtime.settings import Settings
from tests.pipeline.push_support import push_settings

DIVISION = 4242


def change(key: str, version: int, action: str = "Update", **fields: Any) -> ChangeRecord:
    record = None if action == "Delete" else {"ID": key, "Name": f"v{version}", **fields}
    return ChangeRecord(DIVISION, "Accounts", key, action, record, version)


def accept(sessions: sessionmaker[Session], settings: Settings, *changes: ChangeRecord) -> delivery.AcceptResult:
    with sessions() as session, session.begin():
        return delivery.accept(session, list(changes), settings)


def mirrored(sessions: sessionmaker[Session], key: str) -> MirrorRecord | None:
    with sessions() as session:
        return session.scalars(select(MirrorRecord).where(MirrorRecord.key == key)).one_or_none()


def test_event_id_is_derived_and_stable() -> None:
    c = ChangeRecord(division=7, topic="Accounts", key="abc", action="Update", record={}, version=12)
    assert c.event_id == "7:Accounts:abc:12:Update"
    assert c == ChangeRecord(7, "Accounts", "abc", "Update", {}, 12, "7:Accounts:abc:12:Update")


def test_newer_version_replaces_and_older_never_does(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    key = str(uuid.uuid4())
    assert accept(session_factory, settings, change(key, 5)).applied == {"sql": 1}
    assert accept(session_factory, settings, change(key, 9)).applied == {"sql": 1}
    assert accept(session_factory, settings, change(key, 7)).applied == {"sql": 0}
    row = mirrored(session_factory, key)
    assert row is not None
    assert (row.version, row.deleted, row.record) == (9, False, {"ID": key, "Name": "v9"})


def test_tombstone_keeps_its_version_against_a_late_update(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    key = str(uuid.uuid4())
    accept(session_factory, settings, change(key, 3))
    accept(session_factory, settings, change(key, 10, "Delete"))
    assert accept(session_factory, settings, change(key, 8)).applied == {"sql": 0}  # fetched before the delete
    row = mirrored(session_factory, key)
    assert row is not None
    assert (row.version, row.deleted, row.record) == (10, True, None)
    # A record that comes back later (a newer version) replaces the tombstone.
    accept(session_factory, settings, change(key, 11))
    row = mirrored(session_factory, key)
    assert row is not None
    assert (row.version, row.deleted) == (11, False)


def test_versions_out_of_order_in_one_batch_end_at_the_newest(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    key = str(uuid.uuid4())
    accept(session_factory, settings, change(key, 4), change(key, 6, "Delete"), change(key, 5))
    row = mirrored(session_factory, key)
    assert row is not None
    assert (row.version, row.deleted) == (6, True)


def test_the_same_change_twice_is_one_version_and_one_delivery(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    settings = push_settings(settings, "http://127.0.0.1:9/push")
    key = str(uuid.uuid4())
    first = accept(session_factory, settings, change(key, 5))
    again = accept(session_factory, settings, change(key, 5))
    assert first.applied == {"sql": 1, "http": 1}
    assert again.applied == {"sql": 0, "http": 0}
    assert [lane.sink for lane in first.lanes] == ["http"]
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(MirrorRecord).where(MirrorRecord.key == key)) == 1
        rows = list(session.scalars(select(Delivery).where(Delivery.key == key)))
    assert [(r.event_id, r.state, r.attempts) for r in rows] == [(f"{DIVISION}:Accounts:{key}:5:Update", "pending", 0)]


def test_a_failed_transaction_leaves_neither_mirror_nor_log(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    settings = push_settings(settings, "http://127.0.0.1:9/push")
    key = str(uuid.uuid4())

    class Boom(Exception):
        pass

    def accept_then_fail() -> None:
        with session_factory() as session, session.begin():
            delivery.accept(session, [change(key, 1)], settings)
            raise Boom

    with pytest.raises(Boom):
        accept_then_fail()
    assert mirrored(session_factory, key) is None
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.key == key)) == 0
