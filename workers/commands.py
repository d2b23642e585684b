"""Running commands in the workers: claim once, write safely through `exact.Writer`, keep and push the result.

A command runs at most once against Exact: it is claimed (queued → running) before anything is sent, and a task
that finds its own claim still `running` is a redelivery after a crash, so the command becomes `unknown` instead of
being written twice. Rate limits and outages met before the write put it back in the queue. The result (Exact ID and
verified fields, or the error) is kept in `commands` and, in the same transaction, handed to the sinks as a change of
topic `Commands`, so connected systems receive it like any other change.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from celery import Task, shared_task
from sqlalchemy import select

from commands.schema import Command
from commands.store import claim, finish, release, stale_queued, view
from exact import (
    SPECS,
    Connection,
    Division,
    ExactError,
    ExactUnavailable,
    NeedsConsent,
    RateLimited,
    UnknownReference,
    WriteNotVerified,
    WriteOutcomeUnknown,
    Writer,
    WriteResult,
)
from runtime.logging import log_event
from runtime.settings import Settings
from workers.changes import ChangeRecord
from workers.context import WorkerContext, process_context
from workers.delivery import accept, dispatch_pending
from workers.names import EVENTS_QUEUE, RUN_COMMAND, SWEEP_COMMANDS

__all__ = ["COMMANDS_TOPIC", "change_key", "enqueue", "execute", "run_command", "sweep_commands"]

log = logging.getLogger(__name__)

# The topic under which command results reach the sinks (push type `exact.Commands.updated`).
COMMANDS_TOPIC = "Commands"
_KEYS = uuid.UUID("6f1c8f8e-8a55-4d0e-9a39-0c7d2f1e5b21")


class Retry(Exception):
    """Nothing was written; run the command again after `countdown` seconds."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown:.0f} s")
        self.countdown = countdown


def change_key(command_key: str) -> str:
    """Sinks key changes by GUID; a command's is derived from its key (the record carries the key itself)."""
    return str(uuid.uuid5(_KEYS, command_key))


def enqueue(settings: Settings, key: str) -> None:
    """Hand a kept command to the workers (the events queue, behind the same rate limiter as every fetch)."""
    from workers.delivery import producer

    producer(settings).send_task(RUN_COMMAND, args=[key], queue=EVENTS_QUEUE)


def execute(ctx: WorkerContext, key: str, owner: str) -> str:
    """Run the command `key` once; returns its state afterwards. Raises `Retry` when nothing was sent."""
    with ctx.sessions() as session:
        claimed = claim(session, key, owner)
    if claimed.state == "interrupted":
        return _finish(ctx, key, "unknown", _error("Interrupted", "a worker stopped while this command was being "
                       "written; it may have landed, so it was not sent again: look for it in Exact"))  # fmt: skip
    if not claimed.run or claimed.command is None:
        return claimed.state
    command = claimed.command
    connection_id = _connection_for(ctx, command.division)
    if connection_id is None:
        message = f"no connected user can reach division {command.division} (run `exact-pipeline connect`)"
        return _finish(ctx, key, "failed", _error("NoConnection", message))
    try:
        result = _write(ctx, connection_id, command)
    except (RateLimited, ExactUnavailable) as exc:
        # Only before the write, or from an idempotent PUT: a create without an answer is WriteOutcomeUnknown.
        with ctx.sessions() as session:
            release(session, key, owner)
        wait = exc.retry_at - time.time() if isinstance(exc, RateLimited) else 30.0
        raise Retry(min(max(wait, 1.0), 300.0)) from exc
    except WriteNotVerified as exc:
        mismatches = [{"field": m.field, "read_as": m.read_as, "written": m.written, "read": m.read}
                      for m in exc.mismatches]  # fmt: skip
        return _finish(ctx, key, "failed", {"exact_id": exc.key, **_error("WriteNotVerified", exc.message),
                                            "mismatches": mismatches})  # fmt: skip
    except WriteOutcomeUnknown as exc:
        return _finish(ctx, key, "unknown", _error("WriteOutcomeUnknown", exc.message))
    except UnknownReference as exc:
        return _finish(ctx, key, "failed", {**_error("UnknownReference", exc.message), "field": exc.field,
                                            "value": exc.value})  # fmt: skip
    except NeedsConsent as exc:
        return _finish(ctx, key, "failed", _error("NeedsConsent", exc.message))
    except ExactError as exc:
        return _finish(ctx, key, "failed", {**_error(type(exc).__name__, exc.message), "status": exc.status})
    except ValueError as exc:
        return _finish(ctx, key, "failed", _error("InvalidCommand", str(exc)))
    return _finish(ctx, key, "succeeded", {"exact_id": result.key, "verified": result.verified,
                                           "lines": result.lines})  # fmt: skip


def _write(ctx: WorkerContext, connection_id: int, command: Command) -> WriteResult:
    writer = Writer(ctx.client(connection_id), ctx.references(connection_id))
    spec = SPECS[command.entity]
    if command.action == "create":
        return writer.create(command.division, spec, command.fields, command.lines)
    assert command.id is not None
    return writer.update(command.division, spec, str(command.id), command.fields, command.lines)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _connection_for(ctx: WorkerContext, division: int) -> int | None:
    query = (
        select(Connection.id)
        .join(Division, Division.connection_id == Connection.id)
        .where(Division.code == division, Division.granted.is_(True), Connection.needs_consent.is_(False))
        .order_by(Connection.id.desc())
    )
    with ctx.sessions() as session:
        return session.scalars(query).first()


def _finish(ctx: WorkerContext, key: str, status: str, result: dict[str, Any]) -> str:
    with ctx.sessions() as session:
        row = finish(session, key, status, result)
        shown = view(row).model_dump(mode="json")
        change = ChangeRecord(row.division, COMMANDS_TOPIC, change_key(key), "Update", shown,
                              version=time.time_ns() // 1_000_000)  # fmt: skip
        accept(session, [change], ctx.settings)
        session.commit()
    dispatch_pending(ctx.settings, [change.event_id])
    level = logging.INFO if status == "succeeded" else logging.WARNING
    # The key and state only: a result holds business data, which stays out of logs.
    log_event(log, "workers.command.finished", level, key=key, status=status)
    return status


# -- the Celery tasks
@shared_task(name=RUN_COMMAND, bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def run_command(self: Task, key: str) -> str:
    ctx = process_context()
    try:
        return execute(ctx, key, owner=str(self.request.id))
    except Retry as exc:
        # Under the visibility timeout, or Redis hands the waiting task out a second time (see workers/tasks.py).
        raise self.retry(countdown=min(exc.countdown, ctx.settings.broker_visibility_timeout / 2)) from exc


@shared_task(name=SWEEP_COMMANDS, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep_commands() -> int:
    """Resend commands whose task was lost; a duplicate task finds the command claimed and does nothing."""
    ctx = process_context()
    with ctx.sessions() as session:
        keys = stale_queued(session, ctx.settings.commands_sweep_after_seconds)
    for key in keys:
        enqueue(ctx.settings, key)
    return len(keys)
