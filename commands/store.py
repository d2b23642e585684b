"""Commands kept by key: submit once, claim once, finish once; the state machine of `CommandRecord`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from commands.models import DEFAULT_CLIENT, FINAL_STATES, CommandRecord, CommandState
from commands.schema import Command, CommandView
from runtime.db import stored_utc, utc_now

__all__ = [
    "Claim",
    "ClaimState",
    "KeyReused",
    "claim",
    "finish",
    "get",
    "release",
    "stale_queued",
    "stale_running",
    "submit",
    "view",
]


class KeyReused(Exception):
    """The key is taken by a different command."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} was already used for a different command; use a new key")
        self.key = key


def submit(session: Session, command: Command, client: str = DEFAULT_CLIENT) -> tuple[CommandRecord, bool]:
    """Keep `command` (committed) or find it kept; True when new. The same key with another body is `KeyReused`,
    and so is the same key from another `client`: a command's state is its own client's alone."""
    fingerprint = command.fingerprint()
    existing = session.get(CommandRecord, command.key)
    if existing is not None:
        return _same(existing, fingerprint, command.key, client), False
    row = CommandRecord(
        key=command.key,
        division=command.division,
        entity=command.entity,
        action=command.action,
        body=command.model_dump(mode="json"),
        fingerprint=fingerprint,
        status=CommandState.QUEUED,
        client=client,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        # Another submit of the same key won the race.
        existing = session.get(CommandRecord, command.key)
        if existing is None:
            raise
        return _same(existing, fingerprint, command.key, client), False
    return row, True


def _same(existing: CommandRecord, fingerprint: str, key: str, client: str) -> CommandRecord:
    if existing.fingerprint != fingerprint or existing.client != client:
        raise KeyReused(key)
    return existing


def get(session: Session, key: str) -> CommandRecord | None:
    return session.get(CommandRecord, key)


class ClaimState(StrEnum):
    """Why a claim found nothing to run, besides the row's own `CommandState` (already claimed or finished)."""

    MISSING = "missing"  # no command under the key
    INVALID = "invalid"  # the kept body is no command (kept by an older version)
    INTERRUPTED = "interrupted"  # the owner's own earlier attempt, cut short: it may have written


@dataclass(frozen=True)
class Claim:
    """What a worker found: `run` it, or leave it (`state`, a `ClaimState` or the row's status, says why)."""

    run: bool
    state: str
    command: Command | None = None
    problem: str | None = None  # state INVALID: why the kept body is no command


def claim(session: Session, key: str, owner: str) -> Claim:
    """queued → running for `owner` (committed). A row `running` under the same owner is that owner's earlier,
    interrupted attempt: the write may have landed, so it becomes `unknown` rather than be written twice."""
    moved = session.execute(
        update(CommandRecord)
        .where(CommandRecord.key == key, CommandRecord.status == CommandState.QUEUED)
        .values(status=CommandState.RUNNING, owner=owner, attempts=CommandRecord.attempts + 1, updated_at=utc_now())
    )
    session.commit()
    row = session.get(CommandRecord, key, populate_existing=True)
    if row is None:
        return Claim(False, ClaimState.MISSING)
    if _rowcount(moved) == 1:
        try:
            return Claim(True, CommandState.RUNNING, Command.model_validate(row.body))
        except ValidationError as exc:
            return Claim(False, ClaimState.INVALID, problem=_problems(exc))
    if row.status == CommandState.RUNNING and row.owner == owner:
        return Claim(False, ClaimState.INTERRUPTED)
    return Claim(False, row.status)


def release(session: Session, key: str, owner: str) -> None:
    """running → queued: nothing was sent, and the task will be retried."""
    session.execute(
        update(CommandRecord)
        .where(CommandRecord.key == key, CommandRecord.owner == owner, CommandRecord.status == CommandState.RUNNING)
        .values(status=CommandState.QUEUED, updated_at=utc_now())
    )
    session.commit()


def finish(
    session: Session, key: str, status: CommandState, result: dict[str, Any], *, only_running: bool = False
) -> CommandRecord | None:
    """Set the final state and result, in the caller's transaction (the sinks accept it in the same one). With
    `only_running` (the sweeper), a row that is no longer `running` is left as it is, and None returned."""
    assert status in FINAL_STATES, status
    row = session.get(CommandRecord, key, with_for_update=only_running)
    assert row is not None, key
    if only_running and row.status != CommandState.RUNNING:
        return None
    row.status, row.result, row.updated_at = status, result, utc_now()
    session.flush()
    return row


def stale_queued(session: Session, older_than_seconds: float, limit: int = 500) -> list[str]:
    """Keys queued for longer than a worker takes to start one: their task was lost (Redis emptied, say)."""
    return _stale(session, CommandState.QUEUED, older_than_seconds, CommandRecord.created_at, limit)


def stale_running(session: Session, older_than_seconds: float, limit: int = 500) -> list[str]:
    """Keys claimed longer ago than a run may last: their worker died, or could not record the outcome."""
    return _stale(session, CommandState.RUNNING, older_than_seconds, CommandRecord.updated_at, limit)


def _stale(
    session: Session, state: CommandState, older_than_seconds: float, order: InstrumentedAttribute[datetime], limit: int
) -> list[str]:
    cutoff = utc_now() - timedelta(seconds=older_than_seconds)
    query = (
        select(CommandRecord.key)
        .where(CommandRecord.status == state, CommandRecord.updated_at < cutoff)
        .order_by(order)
        .limit(limit)
    )
    return list(session.scalars(query))


def view(row: CommandRecord) -> CommandView:
    return CommandView(
        key=row.key,
        division=row.division,
        entity=row.entity,
        action=row.action,
        status=row.status,
        attempts=row.attempts,
        result=row.result,
        created_at=stored_utc(row.created_at),
        updated_at=stored_utc(row.updated_at),
    )


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'command'}: {e['msg']}" for e in exc.errors())


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
