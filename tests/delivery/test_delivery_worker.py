"""Pushes through a real Celery worker process: retries, order per key, and a worker killed in the middle of a POST."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import Delivery
from runtime.settings import Settings
from tests.conftest import ServerThread
from tests.pipeline.push_support import PushTarget, Worker, await_true, push_settings

DIVISION = 5150


def accept_and_dispatch(settings: Settings, sessions: sessionmaker[Session], changes: list[ChangeRecord]) -> int:
    """What the fetching side does: accept in its transaction, commit, then dispatch."""
    with sessions() as session, session.begin():
        accepted = delivery.accept(session, changes, settings)
    return delivery.dispatch_lanes(settings, accepted.lanes)


def states(sessions: sessionmaker[Session], keys: list[str]) -> dict[str, list[tuple[int, str]]]:
    with sessions() as session:
        found = session.scalars(select(Delivery).where(Delivery.key.in_(keys)).order_by(Delivery.version))
        result: dict[str, list[tuple[int, str]]] = {k: [] for k in keys}
        for row in found:
            result[row.key].append((row.version, row.state))
        return result


def update(key: str, version: int) -> ChangeRecord:
    return ChangeRecord(DIVISION, "Contacts", key, "Update", {"ID": key, "LastName": f"v{version}"}, version)


def test_worker_delivers_every_key_in_version_order_through_failures(
    settings: Settings,
    server: ServerThread,
    target: PushTarget,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    settings = push_settings(
        settings,
        f"{server.url}/push",
        delivery_max_attempts=5,
        delivery_backoff_seconds=0.2,
        delivery_backoff_max_seconds=1.0,
    )
    keys = [str(uuid.uuid4()) for _ in range(3)]
    worker = Worker(settings, tmp_path / "worker.log")
    try:
        target.fail_next = 3  # the first three POSTs fail, whichever lanes they belong to
        # Three batches, as three flushes would accept them: each key's versions arrive over time.
        for version in (1, 2, 3):
            sent = accept_and_dispatch(settings, session_factory, [update(k, version) for k in keys])
            assert sent == len(keys)
        done = {k: [(v, "delivered") for v in (1, 2, 3)] for k in keys}
        await_true(
            lambda: states(session_factory, keys) == done,
            timeout=90,
            what="delivery of every version",
            detail=lambda: f"{states(session_factory, keys)}\n{worker.log()[-3000:]}",
        )
    finally:
        worker.stop()
    assert target.rejected == 0
    assert target.duplicates == []
    for key in keys:
        # Per key nothing older arrives after something newer; a superseded version may be skipped, never reordered.
        assert target.versions(key) == sorted(target.versions(key))
        assert target.versions(key)[-1] == 3
    assert "Traceback" not in worker.log()


def test_a_worker_killed_during_a_post_loses_nothing_and_the_target_sees_one_event(
    settings: Settings,
    server: ServerThread,
    target: PushTarget,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """A batch of three keys: the worker dies while its first POST is out; every head of the batch was committed as
    sending before it, and a second worker resends them all under their ids."""
    # A short visibility timeout, so the killed worker's unacked message comes back within the test.
    settings = push_settings(settings, f"{server.url}/push", push_timeout_seconds=30.0, broker_visibility_timeout=4)
    keys = sorted(str(uuid.uuid4()) for _ in range(3))
    first = Worker(settings, tmp_path / "first.log")
    try:
        target.delay_seconds = 4.0  # the target takes its time: the worker is killed while it waits
        assert accept_and_dispatch(settings, session_factory, [update(k, 1) for k in keys]) == len(keys)
        await_true(lambda: target.requests >= 1, timeout=60, what="the first POST", detail=first.log)
        first.kill()
    finally:
        first.stop()
    # The fence: every head of the batch was committed as sending before its first POST.
    assert states(session_factory, keys) == {k: [(1, "sending")] for k in keys}
    await_true(lambda: len(target.accepted) == 1, timeout=30, what="the target finishing the first POST")
    target.delay_seconds = 0.0
    second = Worker(settings, tmp_path / "second.log")
    try:
        # Nobody dispatches again: the broker hands the unacked message to the new worker, which sends the rows
        # left `sending` once more, under the same webhook-ids.
        await_true(
            lambda: states(session_factory, keys) == {k: [(1, "delivered")] for k in keys},
            timeout=90,
            what="redelivery of the batch after the kill",
            detail=second.log,
        )
    finally:
        second.stop()
    first_id = f"{DIVISION}:Contacts:{keys[0]}:1:Update"
    assert sorted(target.ids()) == sorted(f"{DIVISION}:Contacts:{k}:1:Update" for k in keys)  # each accepted once
    assert target.duplicates == [first_id]  # the one POSTed before the kill, recognised by its id
    with session_factory() as session:
        assert session.scalars(select(Delivery.attempts).where(Delivery.key == keys[0])).one() == 2
