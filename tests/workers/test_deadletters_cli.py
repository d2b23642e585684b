"""Dead letters through a real worker and the real CLI: given up after the limit, listed, replayed, delivered."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from runtime.cli import _mount, app
from runtime.settings import Settings, get_settings
from tests.conftest import ServerThread
from tests.workers.push_support import PushTarget, Worker, await_true, push_settings
from workers import delivery
from workers.changes import ChangeRecord
from workers.models import Delivery

runner = CliRunner()
DIVISION = 6060


@pytest.fixture
def push(settings: Settings, server: ServerThread) -> Settings:
    return push_settings(settings, f"{server.url}/push", delivery_max_attempts=3, delivery_backoff_seconds=0.1)


@pytest.fixture
def env(push: Settings) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    _mount()
    yield push.child_environment(os.environ)
    get_settings.cache_clear()


def invoke(args: list[str], env: dict[str, str]) -> Result:
    # Importing the Celery app (for dispatching) builds settings from this process's environment: forget them.
    get_settings.cache_clear()
    return runner.invoke(app, args, env=env)


def state_of(sessions: sessionmaker[Session], key: str) -> tuple[str, int] | None:
    with sessions() as session:
        row = session.execute(select(Delivery.state, Delivery.attempts).where(Delivery.key == key)).one_or_none()
        return None if row is None else (row[0], row[1])


def dead_ids(env: dict[str, str]) -> dict[str, dict[str, object]]:
    result = invoke(["deadletters", "list", "--json"], env)
    assert result.exit_code == 0, result.output
    return {d["event_id"]: d for d in map(json.loads, result.output.splitlines())}


def test_a_dead_letter_is_listed_and_replay_delivers_it(
    push: Settings, env: dict[str, str], target: PushTarget, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key = str(uuid.uuid4())
    change = ChangeRecord(DIVISION, "Items", key, "Update", {"ID": key, "Code": "X1"}, 1)
    worker = Worker(push, tmp_path / "worker.log")
    try:
        target.down = True
        with session_factory() as session, session.begin():
            delivery.accept(session, [change], push)
        delivery.dispatch_pending(push, [change.event_id])
        await_true(lambda: state_of(session_factory, key) == ("dead", 3), timeout=60, what="the dead letter",
                   detail=worker.log)  # fmt: skip
        assert target.requests == 3
        assert target.accepted == []

        listed = dead_ids(env)[change.event_id]
        assert (listed["sink"], listed["attempts"]) == ("http", 3)
        assert str(listed["last_error"]).endswith("answered 503")
        table = invoke(["deadletters", "list"], env)
        assert table.exit_code == 0
        assert change.event_id in table.output

        target.down = False
        replayed = invoke(["deadletters", "replay", "--id", str(listed["id"])], env)
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1 dead letter(s) on 1 lane(s); 1 dispatched" in replayed.output
        await_true(lambda: state_of(session_factory, key) == ("delivered", 1), timeout=60, what="the replay",
                   detail=worker.log)  # fmt: skip
    finally:
        worker.stop()
    assert target.ids() == [change.event_id]
    assert change.event_id not in dead_ids(env)


def test_replay_all_and_unknown_ids(
    push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(2)]
    changes = [ChangeRecord(DIVISION, "Items", k, "Update", {"ID": k}, 1) for k in keys]
    with session_factory() as session, session.begin():
        delivery.accept(session, changes, push)
        session.execute(
            Delivery.__table__.update().where(Delivery.key.in_(keys)).values(state="dead", attempts=3)  # type: ignore[attr-defined]
        )
    result = invoke(["deadletters", "replay", "--all"], env)
    assert result.exit_code == 0, result.output
    assert all(state_of(session_factory, k) == ("pending", 0) for k in keys)  # no worker runs: they wait

    missing = invoke(["deadletters", "replay", "--id", "999999999"], env)
    assert missing.exit_code == 1
    assert "not a dead letter: 999999999" in missing.output

    neither = invoke(["deadletters", "replay"], env)
    assert neither.exit_code == 2
    assert "--all" in neither.output
