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

from cli.main import _mount, app
from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import Delivery
from runtime.settings import Settings, get_settings
from tests.conftest import ServerThread
from tests.pipeline.push_support import PushTarget, Worker, await_true, push_settings
from tests.pipeline.target_support import ScriptedTarget, serve_scripted

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
            accepted = delivery.accept(session, [change], push)
        delivery.dispatch_lanes(push, accepted.lanes)
        await_true(
            lambda: state_of(session_factory, key) == ("dead", 3), timeout=60, what="the dead letter", detail=worker.log
        )
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
        await_true(
            lambda: state_of(session_factory, key) == ("delivered", 1), timeout=60, what="the replay", detail=worker.log
        )
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


def accept_and_dispatch(settings: Settings, sessions: sessionmaker[Session], changes: list[ChangeRecord]) -> None:
    with sessions() as session, session.begin():
        accepted = delivery.accept(session, changes, settings)
    delivery.dispatch_lanes(settings, accepted.lanes)


def test_a_410_stops_the_target_flags_it_and_resume_sends_again(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    target = ScriptedTarget(status=410)
    with serve_scripted(target) as server:
        push = push_settings(settings, f"{server.url}/push", delivery_max_attempts=3)
        env = push.child_environment(os.environ)
        _mount()
        keys = [str(uuid.uuid4()) for _ in range(3)]
        changes = [ChangeRecord(DIVISION, "Items", k, "Update", {"ID": k}, 1) for k in keys]
        worker = Worker(push, tmp_path / "worker.log")
        try:
            accept_and_dispatch(push, session_factory, changes)
            # The lanes' one batch task ran: the first POST got 410, and the others were never POSTed.
            await_true(
                lambda: worker.log().count("succeeded in") >= 1,
                timeout=60,
                what="the batch task",
                detail=worker.log,
            )
            assert target.requests == 1
            assert sorted(state_of(session_factory, k) for k in keys) == [("pending", 0)] * 3  # kept, no attempt spent
            report = json.loads(invoke(["status", "--json"], env).output)
            [stopped] = report["dead_letters"]["stopped_targets"]
            assert (stopped["sink"], stopped["url"]) == ("http", f"{server.url}/push")
            assert "410" in stopped["error"]
            assert report["needs_attention"] is True
            assert "deadletters resume --sink http" in invoke(["status"], env).output

            target.status = 204
            resumed = invoke(["deadletters", "resume", "--sink", "http"], env)
            assert resumed.exit_code == 0, resumed.output
            assert "resumed http" in resumed.output
            await_true(
                lambda: all(state_of(session_factory, k) == ("delivered", 1) for k in keys),
                timeout=60,
                what="delivery after resume",
                detail=worker.log,
            )
        finally:
            worker.stop()
        assert json.loads(invoke(["status", "--json"], env).output)["dead_letters"]["stopped_targets"] == []
    mine = sorted(c.event_id for c in changes)  # resume also sends what earlier tests left pending for the sink
    assert sorted(s.webhook_id for s in target.seen[1:] if s.webhook_id in mine) == mine


def test_push_url_credentials_never_reach_the_table_the_list_or_the_logs(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    password = "s3cret-Pa55word"
    target = ScriptedTarget(status=503)
    with serve_scripted(target) as server:
        url = server.url.replace("http://", f"http://pusher:{password}@") + "/push"
        push = push_settings(settings, url, delivery_max_attempts=2, delivery_backoff_seconds=0.05)
        env = push.child_environment(os.environ)
        _mount()
        key = str(uuid.uuid4())
        worker = Worker(push, tmp_path / "worker.log")
        try:
            accept_and_dispatch(push, session_factory, [ChangeRecord(DIVISION, "Items", key, "Update", {"ID": key}, 1)])
            await_true(
                lambda: state_of(session_factory, key) == ("dead", 2),
                timeout=60,
                what="the dead letter",
                detail=worker.log,
            )
        finally:
            worker.stop()
    assert target.seen[0].authorization is not None  # sent on the request as they are
    with session_factory() as session:
        error = session.scalars(select(Delivery.last_error).where(Delivery.key == key)).one()
    assert error is not None
    assert "***@127.0.0.1" in error
    listed = invoke(["deadletters", "list", "--json"], env).output + invoke(["deadletters", "list"], env).output
    assert key in listed
    for name, text in (("delivery table", error), ("deadletters list", listed), ("worker log", worker.log())):
        assert password not in text, name
