"""The command state machine on the real database: kept once per key, claimed once, and a claim found still
running by its own owner (a worker killed mid-write, its task redelivered) ends as `unknown`, never a second write."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from commands.models import CommandRecord
from commands.schema import Command
from commands.store import KeyReused, claim, release, stale_queued, submit
from commands.tasks import COMMANDS_TOPIC, change_key, execute
from delivery.models import MirrorRecord
from runtime.db import utc_now
from runtime.settings import Settings
from sync.context import WorkerContext


def a_command(**fields: object) -> Command:
    return Command(
        key=f"k-{uuid.uuid4().hex}",
        division=101,
        entity="Account",
        action="create",
        fields={"Code": "9001", "Name": "Co", **fields},
    )  # type: ignore[arg-type]


def test_a_key_is_kept_once_and_refused_for_another_body(session_factory: sessionmaker[Session]) -> None:
    command = a_command()
    with session_factory() as session:
        assert submit(session, command)[1] is True
        assert submit(session, command)[1] is False
        with pytest.raises(KeyReused, match=command.key):
            submit(session, command.model_copy(update={"fields": {"Code": "9002"}}))


def test_only_one_owner_claims_it(session_factory: sessionmaker[Session]) -> None:
    command = a_command()
    with session_factory() as session:
        submit(session, command)
        first, second = claim(session, command.key, "task-a"), claim(session, command.key, "task-b")
    assert (first.run, first.command) == (True, command)
    assert (second.run, second.state) == (False, "running")


def test_a_released_claim_is_claimed_again_by_its_retry(session_factory: sessionmaker[Session]) -> None:
    command = a_command()
    with session_factory() as session:
        submit(session, command)
        claim(session, command.key, "task-a")
        release(session, command.key, "task-a")
        again = claim(session, command.key, "task-a")
        row = session.get(CommandRecord, command.key)
    assert again.run
    assert row is not None and row.attempts == 2  # noqa: PT018


def test_its_own_claim_found_running_is_an_interrupted_write(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    command = a_command()
    with session_factory() as session:
        submit(session, command)
        assert claim(session, command.key, "task-a").run  # ... and the worker died before finishing
    ctx = WorkerContext.from_settings(settings)
    assert execute(ctx, command.key, "task-a") == "unknown"
    with session_factory() as session:
        row = session.get(CommandRecord, command.key)
        query = select(MirrorRecord).where(
            MirrorRecord.topic == COMMANDS_TOPIC, MirrorRecord.key == change_key(command.key)
        )
        mirrored = session.scalars(query).one()
    assert row is not None
    assert row.status == "unknown"
    assert row.result is not None and "may have landed" in row.result["error"]["message"]  # noqa: PT018
    assert mirrored.record is not None and mirrored.record["status"] == "unknown"  # noqa: PT018
    assert execute(ctx, command.key, "task-a") == "unknown"  # and stays so: nothing runs it again


def test_queued_too_long_is_found_by_the_sweeper(session_factory: sessionmaker[Session]) -> None:
    old, new = a_command(), a_command()
    with session_factory() as session:
        submit(session, old)
        submit(session, new)
        session.execute(
            update(CommandRecord)
            .where(CommandRecord.key == old.key)
            .values(updated_at=utc_now() - timedelta(minutes=5))
        )
        session.commit()
        found = stale_queued(session, older_than_seconds=60)
    assert old.key in found
    assert new.key not in found


def test_a_claim_running_past_the_time_limit_is_settled_unknown_by_the_sweeper(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Its worker died (killed by the hard time limit, the message acked): no task will ever finish it."""
    from commands.tasks import settle_stale

    stuck, fresh = a_command(), a_command()
    with session_factory() as session:
        for command in (stuck, fresh):
            submit(session, command)
            assert claim(session, command.key, "task-a").run
        session.execute(
            update(CommandRecord)
            .where(CommandRecord.key == stuck.key)
            .values(updated_at=utc_now() - timedelta(hours=1))
        )
        session.commit()
    ctx = WorkerContext.from_settings(settings)
    assert settle_stale(ctx) >= 1  # the run's database may hold other old claims
    with session_factory() as session:
        settled, untouched = session.get(CommandRecord, stuck.key), session.get(CommandRecord, fresh.key)
        query = select(MirrorRecord).where(
            MirrorRecord.topic == COMMANDS_TOPIC, MirrorRecord.key == change_key(stuck.key)
        )
        mirrored = session.scalars(query).one()
    assert settled is not None and untouched is not None  # noqa: PT018
    assert (settled.status, untouched.status) == ("unknown", "running")
    assert settled.result is not None and "may have landed" in settled.result["error"]["message"]  # noqa: PT018
    assert mirrored.record is not None and mirrored.record["status"] == "unknown"  # noqa: PT018
