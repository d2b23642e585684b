"""`exact-pipeline push replay`: which mirrored records it sends again, under which webhook ids, and what becomes of
their delivery log rows; through the real CLI, and a real worker and push target where something is sent."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from cli.main import _mount, app
from delivery import outbox as delivery
from delivery.changes import ChangeRecord
from delivery.models import Delivery, MirrorRecord
from delivery.origin import command_origin
from delivery.replay import replay_event_id
from runtime.settings import Settings, get_settings
from tests.conftest import ServerThread
from tests.pipeline import fresh_db
from tests.pipeline.push_support import PushTarget, Worker, await_true, push_settings
from tests.pipeline.sinks_support import write_sinks_file

# A database of its own: a replay reads the whole mirror, and other tests' records would join in.
database_url, engine, session_factory = fresh_db.database_url, fresh_db.engine, fresh_db.session_factory
runner = CliRunner()
A, B = 7071, 7072


@pytest.fixture
def push(settings: Settings, server: ServerThread) -> Settings:
    return push_settings(settings, f"{server.url}/push")


@pytest.fixture
def env(push: Settings) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    _mount()
    yield push.child_environment(os.environ)
    get_settings.cache_clear()


def invoke(args: list[str], env: dict[str, str]) -> Result:
    get_settings.cache_clear()  # settings another test built from this process's environment must not be used
    return runner.invoke(app, ["push", "replay", *args], env={**env, "COLUMNS": "200"})  # errors unwrapped


def update_of(division: int, topic: str, key: str, version: int) -> ChangeRecord:
    return ChangeRecord(division, topic, key, "Update", {"ID": key, "Name": f"v{version}"}, version)


def delete_of(division: int, topic: str, key: str, version: int) -> ChangeRecord:
    return ChangeRecord(division, topic, key, "Delete", None, version)


def delivered(push: Settings, sessions: sessionmaker[Session], changes: list[ChangeRecord]) -> None:
    """Accept `changes` into the mirror and the log, as if every one had been delivered."""
    with sessions() as session, session.begin():
        delivery.accept(session, changes, push)
        session.execute(update(Delivery).values(state="delivered", attempts=1))


def states(sessions: sessionmaker[Session]) -> dict[str, tuple[str, int]]:
    with sessions() as session:
        rows = session.execute(select(Delivery.event_id, Delivery.state, Delivery.attempts))
        return {event_id: (state, attempts) for event_id, state, attempts in rows}


def pending(sessions: sessionmaker[Session]) -> set[str]:
    return {event_id for event_id, (state, _) in states(sessions).items() if state == "pending"}


class TestMatch:
    def test_every_record_by_default(
        self, push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
    ) -> None:
        changes = [update_of(A, "Accounts", str(uuid.uuid4()), 1), update_of(B, "Contacts", str(uuid.uuid4()), 1)]
        delivered(push, session_factory, changes)
        result = invoke(["--sink", "http"], env)
        assert result.exit_code == 0, result.output
        assert pending(session_factory) == {c.event_id for c in changes}
        assert "replayed 2 record(s) (0 deletes) to http" in result.output
        assert "2 lane(s), 2 dispatched" in result.output

    def test_division_and_topic_in_any_case(
        self, push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
    ) -> None:
        key = str(uuid.uuid4())
        wanted = update_of(A, "Accounts", key, 1)
        others = [update_of(A, "Contacts", key, 1), update_of(B, "Accounts", key, 1)]
        delivered(push, session_factory, [wanted, *others])
        result = invoke(["--sink", "http", "--division", str(A), "--topic", "accounts"], env)
        assert result.exit_code == 0, result.output
        assert pending(session_factory) == {wanted.event_id}

    def test_since_is_when_the_mirror_took_the_version(
        self, push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
    ) -> None:
        old, new = update_of(A, "Accounts", str(uuid.uuid4()), 1), update_of(A, "Accounts", str(uuid.uuid4()), 1)
        delivered(push, session_factory, [old, new])
        with session_factory() as session, session.begin():
            taken = datetime(2026, 1, 1, 12, tzinfo=UTC)
            session.execute(update(MirrorRecord).where(MirrorRecord.key == old.key).values(updated_at=taken))
        result = invoke(["--sink", "http", "--since", "2026-01-01T13:30:00+01:00"], env)  # 12:30 UTC
        assert result.exit_code == 0, result.output
        assert pending(session_factory) == {new.event_id}
        result = invoke(["--sink", "http", "--since", "2026-01-01T11:59:59Z"], env)
        assert pending(session_factory) == {old.event_id, new.event_id}

    def test_a_time_that_is_not_iso_8601_is_refused(self, env: dict[str, str]) -> None:
        result = invoke(["--sink", "http", "--since", "yesterday"], env)
        assert result.exit_code == 2
        assert "ISO 8601" in result.output

    def test_a_dry_run_counts_and_changes_nothing(
        self, push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
    ) -> None:
        key = str(uuid.uuid4())
        delivered(push, session_factory, [update_of(A, "Accounts", key, 1), delete_of(A, "Accounts", key, 2)])
        before = states(session_factory)
        result = invoke(["--sink", "http", "--dry-run"], env)
        assert result.exit_code == 0, result.output
        assert "would replay 1 record(s) (1 deletes) to http" in result.output
        assert states(session_factory) == before


class TestSink:
    def test_an_unknown_sink_is_refused_naming_the_configured_ones(self, env: dict[str, str]) -> None:
        for name in ("crm", "sql"):  # sql is configured, but it is not a push sink
            result = invoke(["--sink", name], env)
            assert result.exit_code == 2, result.output
            assert f"'{name}' is not a configured push sink" in result.output
            assert "configured: http" in result.output

    def test_no_push_sink_configured(self, settings: Settings) -> None:
        _mount()
        result = invoke(["--sink", "http"], settings.child_environment(os.environ))  # SINKS=sql only
        assert result.exit_code == 2
        assert "configured: none" in result.output


class TestRoute:
    def test_a_named_sink_gets_only_what_its_route_admits_and_no_echo(
        self, settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        routes = {"crm": {"topics": ["Accounts"], "divisions": [A], "suppress_echo": True}, "erp": {}}
        path = write_sinks_file(tmp_path / "sinks.toml", "http://127.0.0.1:9", routes)
        named = settings.model_copy(update={"sinks": "sql", "sinks_file": str(path)})
        key = str(uuid.uuid4())
        admitted = update_of(A, "Accounts", key, 1)
        echo = replace(update_of(A, "Accounts", str(uuid.uuid4()), 1), origin=command_origin("c-1", "crm"))
        others = [update_of(A, "Contacts", key, 1), update_of(B, "Accounts", key, 1)]
        delivered(named, session_factory, [admitted, echo, *others])
        _mount()
        env = named.child_environment(os.environ)
        result = invoke(["--sink", "crm"], env)
        assert result.exit_code == 0, result.output
        assert "1 put back to pending, 0 added, 0 already waiting, 3 outside its route" in result.output
        with session_factory() as session:
            rows = session.execute(select(Delivery.sink, Delivery.event_id).where(Delivery.state == "pending"))
            assert set(rows) == {("crm", admitted.event_id)}
        assert "configured: crm, erp" in invoke(["--sink", "http"], env).output


class TestLogRows:
    def test_the_latest_version_under_its_original_id_and_a_tombstone_as_a_delete(
        self, push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
    ) -> None:
        kept, gone = str(uuid.uuid4()), str(uuid.uuid4())
        changes = [
            update_of(A, "Accounts", kept, 1),
            update_of(A, "Accounts", kept, 2),
            update_of(A, "Accounts", gone, 1),
            delete_of(A, "Accounts", gone, 3),
        ]
        delivered(push, session_factory, changes)
        result = invoke(["--sink", "http"], env)
        assert result.exit_code == 0, result.output
        assert pending(session_factory) == {changes[1].event_id, changes[3].event_id}
        assert states(session_factory)[changes[1].event_id] == ("pending", 0)  # a fresh attempt budget
        assert "replayed 2 record(s) (1 deletes) to http: 2 put back to pending, 0 added, 0 already waiting" in (
            result.output
        )

    def test_a_pruned_row_is_added_again_and_a_waiting_one_left_alone(
        self, push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
    ) -> None:
        pruned, waiting = update_of(A, "Accounts", str(uuid.uuid4()), 1), update_of(A, "Accounts", str(uuid.uuid4()), 1)
        delivered(push, session_factory, [pruned, waiting])
        with session_factory() as session, session.begin():
            session.execute(delete(Delivery).where(Delivery.event_id == pruned.event_id))
            session.execute(
                update(Delivery).where(Delivery.event_id == waiting.event_id).values(state="pending", attempts=2)
            )
        result = invoke(["--sink", "http"], env)
        assert result.exit_code == 0, result.output
        assert states(session_factory) == {pruned.event_id: ("pending", 0), waiting.event_id: ("pending", 2)}
        assert "0 put back to pending, 1 added, 1 already waiting" in result.output

    def test_new_ids_add_rows_and_leave_the_originals(
        self, push: Settings, env: dict[str, str], session_factory: sessionmaker[Session]
    ) -> None:
        change = update_of(A, "Accounts", str(uuid.uuid4()), 1)
        delivered(push, session_factory, [change])
        result = invoke(["--sink", "http", "--new-ids"], env)
        assert result.exit_code == 0, result.output
        found = re.search(r"webhook-ids: <original>:replay:([0-9a-f]{12})", result.output)
        assert found, result.output
        assert states(session_factory) == {
            change.event_id: ("delivered", 1),
            replay_event_id(change.event_id, found[1]): ("pending", 0),
        }


def test_replayed_ids_are_skipped_by_a_receiver_that_kept_them_and_new_ids_are_taken(
    push: Settings, env: dict[str, str], target: PushTarget, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    key = str(uuid.uuid4())
    first, latest = update_of(A, "Items", key, 1), update_of(A, "Items", key, 2)
    worker = Worker(push, tmp_path / "worker.log")
    try:
        with session_factory() as session, session.begin():
            accepted = delivery.accept(session, [first, latest], push)
        delivery.dispatch_lanes(push, accepted.lanes)
        await_true(lambda: target.ids() == [first.event_id, latest.event_id], what="the pushes", detail=worker.log)

        assert invoke(["--sink", "http"], env).exit_code == 0
        await_true(lambda: target.duplicates == [latest.event_id], what="the replay", detail=worker.log)
        assert target.ids() == [first.event_id, latest.event_id]  # the receiver already had it

        result = invoke(["--sink", "http", "--new-ids"], env)
        assert result.exit_code == 0, result.output
        await_true(lambda: len(target.ids()) == 3, what="the replay under new ids", detail=worker.log)
    finally:
        worker.stop()
    again = target.accepted[-1]
    assert again.webhook_id.startswith(f"{latest.event_id}:replay:")
    assert (again.version, again.payload["data"]["record"]) == (2, latest.record)
