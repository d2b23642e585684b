"""Running commands in the workers: claim once, write safely through `exact.Writer`, keep and push the result.

A command runs at most once against Exact: it is claimed (queued → running) before anything is sent, and a task
that finds its own claim still `running` is a redelivery after a crash, so the command becomes `unknown` instead of
being written twice. Rate limits, outages and a paused endpoint met before the write put it back in the queue; any
other error ends it `failed` if the write was not sent yet, `unknown` (with the Exact ID when known) once it may have
landed. The result (Exact ID and verified fields, or the error) is kept in `commands` and, in the same transaction,
handed to the sinks as a change of topic `Commands`, so connected systems receive it like any other change. The
version a command wrote (the record's `Modified` as read back) is kept at once, under its client's name: the change
fetched of it later is pushed with origin `command`, and not to that client's own sink if it suppresses echoes.

The Writer checks each write before sending (`exact.Preflight`: a refusal is `failed` with the check and its values),
finds an upsert's record by natural key, and settles a create whose answer was lost: it stamps an empty marker field
with `exact-pipeline:<key>` and, after COMMANDS_SETTLE_SECONDS, looks the record up by YourRef or that marker.

A database that refuses the result is retried for a while; the outcome waits in Redis meanwhile, and the sweeper
settles a command left `running` past the task's time limit with it (or as `unknown`, when its worker died).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from celery import Task, shared_task
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from commands.models import DEFAULT_CLIENT, CommandState
from commands.schema import Command
from commands.share import spend_share
from commands.store import ClaimState, claim, finish, get, release, stale_queued, stale_running, view
from commands.writing import command_writer
from connections.context import ConnectionContext, connection_context
from connections.queries import connection_reaching
from delivery.changes import COMMANDS_TOPIC, ChangeRecord
from delivery.origin import command_origin, record_write
from delivery.outbox import PushLane, accept, dispatch_lanes
from exact import (
    SPECS,
    AmbiguousMatch,
    Candidate,
    DuplicateAccount,
    EndpointBlocked,
    ErrorBudget,
    ExactClient,
    ExactError,
    ExactUnavailable,
    NeedsConsent,
    PreflightFailed,
    RateLimited,
    UnknownReference,
    WriteNotVerified,
    WriteOutcomeUnknown,
    WriteProgress,
    WriteResult,
    budget_class,
)
from runtime.broker import producer
from runtime.contracts import EVENTS_QUEUE, RUN_COMMAND, SWEEP_COMMANDS
from runtime.logging import log_event
from runtime.retry import retry_countdown
from runtime.settings import Settings

__all__ = [
    "COMMANDS_TOPIC",
    "MARKER_PREFIX",
    "change_key",
    "enqueue",
    "execute",
    "run_command",
    "settle_stale",
    "sweep",
    "sweep_commands",
]

log = logging.getLogger(__name__)

_KEYS = uuid.UUID("6f1c8f8e-8a55-4d0e-9a39-0c7d2f1e5b21")
# After the soft time limit interrupts a run, this long to record its outcome before the hard limit kills it.
HARD_LIMIT_GRACE_SECONDS = 30.0
OUTCOME_TTL_SECONDS = 7 * 86400
# Stamped into a create's marker field (an Account's free text, say) when the command leaves it empty, to find the
# record again if Exact's answer is lost.
MARKER_PREFIX = "exact-pipeline:"
_INTERRUPTED = (
    "a worker stopped while this command was being written; it may have landed, so it was not sent "
    "again: look for it in Exact"
)


class Retry(Exception):
    """Nothing was written; run the command again, not before `wait` seconds (what stood in the way named)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"retry in {wait:.0f} s")
        self.wait = wait


def change_key(command_key: str) -> str:
    """Sinks key changes by GUID; a command's is derived from its key (the record carries the key itself)."""
    return str(uuid.uuid5(_KEYS, command_key))


def enqueue(settings: Settings, key: str) -> None:
    """Hand a kept command to the workers (the events queue, behind the same rate limiter as every fetch), with the
    run's time limits: the soft one interrupts it (its outcome is then recorded), the hard one kills it."""
    soft = settings.commands_time_limit_seconds
    producer(settings).send_task(
        RUN_COMMAND, args=[key], queue=EVENTS_QUEUE, soft_time_limit=soft, time_limit=soft + HARD_LIMIT_GRACE_SECONDS
    )


def execute(ctx: ConnectionContext, key: str, owner: str) -> str:
    """Run the command `key` once; returns its state afterwards. Raises `Retry` when nothing was sent."""
    with ctx.sessions() as session:
        claimed = claim(session, key, owner)
    if claimed.state == ClaimState.INTERRUPTED:
        return _finish(ctx, key, CommandState.UNKNOWN, _error("Interrupted", _INTERRUPTED))
    if claimed.state == ClaimState.INVALID:
        return _finish(ctx, key, CommandState.FAILED, _error("InvalidCommand", f"nothing was sent: {claimed.problem}"))
    if not claimed.run or claimed.command is None:
        return claimed.state
    progress = WriteProgress()
    try:
        status, result = _run(ctx, key, claimed.command, progress)
    except Exception as exc:  # the task boundary: whatever failed, the command must not stay `running`
        settled = _outcome(exc, progress)
        if isinstance(settled, Retry):
            with ctx.sessions() as session:
                release(session, key, owner)
            raise settled from exc
        status, result = settled
    return _finish(ctx, key, status, result)


def _run(
    ctx: ConnectionContext, key: str, command: Command, progress: WriteProgress
) -> tuple[CommandState, dict[str, Any]]:
    with ctx.sessions() as session:
        connection_id = connection_reaching(session, command.division)
    if connection_id is None:
        message = f"no connected user can reach division {command.division} (run `exact-pipeline connect`)"
        return CommandState.FAILED, _error("NoConnection", message)
    spend_share(ctx, key, command, connection_id)  # a named client's share of the budget; ShareSpent is RateLimited
    with budget_class("command"):  # the highest class: a backfill or a delta cycle cannot hold a command up
        result = _write(ctx, connection_id, command, progress)
    _record_write(ctx, key, result)
    shown = {"exact_id": result.key, "verified": result.verified, "lines": result.lines}
    if command.action == "upsert":
        shown["action"] = result.action  # what the upsert did: "create" or "update"
    if result.found_by is not None:
        shown["found_by"] = result.found_by  # its answer was lost; found again by this field
    return CommandState.SUCCEEDED, shown


def _outcome(exc: Exception, progress: WriteProgress) -> tuple[CommandState, dict[str, Any]] | Retry:
    """What an error means by how far the write got: before it was sent, `failed` (or a retry when only the budget,
    a paused endpoint or an outage stood in the way); once it may have landed, `unknown` with the Exact ID."""
    if isinstance(exc, WriteNotVerified):
        mismatches = [
            {"field": m.field, "read_as": m.read_as, "written": m.written, "read": m.read} for m in exc.mismatches
        ]
        return CommandState.FAILED, {
            "exact_id": exc.key,
            **_error("WriteNotVerified", exc.message),
            "mismatches": mismatches,
        }
    if progress.landed:
        message = (
            f"Exact took the write, then {type(exc).__name__} stopped its read-back: look at record "
            f"{progress.key} in Exact"
        )
        return CommandState.UNKNOWN, {"exact_id": progress.key, **_error("NotVerified", message)}
    if isinstance(exc, RateLimited | EndpointBlocked | ExactUnavailable):
        # Before the write, or from an idempotent PUT: a create without an answer is WriteOutcomeUnknown.
        return Retry(_wait(exc))
    if isinstance(exc, WriteOutcomeUnknown):
        return CommandState.UNKNOWN, {"exact_id": progress.key, **_error("WriteOutcomeUnknown", exc.message)}
    if isinstance(exc, UnknownReference):
        return CommandState.FAILED, {**_error("UnknownReference", exc.message), "field": exc.field, "value": exc.value}
    if isinstance(exc, PreflightFailed):
        values = json.loads(json.dumps(exc.values, default=str))  # kept in a JSON column, pushed as JSON
        return CommandState.FAILED, {**_error("PreflightFailed", exc.message), "check": exc.check, "values": values}
    if isinstance(exc, AmbiguousMatch | DuplicateAccount):
        return CommandState.FAILED, {**_error(type(exc).__name__, exc.message), "candidates": _shown(exc.candidates)}
    if isinstance(exc, NeedsConsent):
        return CommandState.FAILED, _error("NeedsConsent", exc.message)
    if isinstance(exc, ExactError):  # refused by Exact, or by the client before sending
        return CommandState.FAILED, {**_error(type(exc).__name__, exc.message), "status": exc.status}
    if progress.sent:
        message = f"{type(exc).__name__} while the write was in flight; it may have landed: look for it in Exact"
        return CommandState.UNKNOWN, {"exact_id": progress.key, **_error("Interrupted", message)}
    if type(exc) is ValueError:  # what the Writer finds wrong with the command; a subclass is something else
        return CommandState.FAILED, _error("InvalidCommand", str(exc))
    # Only the type: the message of an unexpected error may hold the command's data, and this result is pushed.
    return CommandState.FAILED, _error(
        "InternalError", f"{type(exc).__name__} before the write was sent; nothing was sent"
    )


def _wait(exc: Exception) -> float:
    if isinstance(exc, RateLimited):
        return exc.retry_at - time.time()
    # A paused endpoint reopens as its errors age out of the hour; an outage is given half a minute.
    return 300.0 if isinstance(exc, EndpointBlocked) else 30.0


def _write(ctx: ConnectionContext, connection_id: int, command: Command, progress: WriteProgress) -> WriteResult:
    client = _commands_client(ctx, connection_id)
    writer = command_writer(ctx.settings, ctx.client(connection_id), client, ctx.references(connection_id))
    spec, division, fields, lines = SPECS[command.entity], command.division, command.fields, command.lines
    marker = f"{MARKER_PREFIX}{command.key}"
    if command.action == "create":
        return writer.create(division, spec, fields, lines, progress=progress, marker=marker, dedupe=command.dedupe)
    if command.action == "upsert":
        assert command.match_on is not None
        return writer.upsert(
            division, spec, command.match_on, fields, lines, progress=progress, marker=marker, dedupe=command.dedupe
        )
    assert command.id is not None
    return writer.update(command.division, spec, str(command.id), command.fields, command.lines, progress=progress)


def _record_write(ctx: ConnectionContext, key: str, result: WriteResult) -> None:
    """Keep the version the command wrote, for the sinks' origin rule (`delivery.origin`), at once: the fetch its
    webhook starts may come before the outcome is recorded. A database that refuses costs an echo, not the command."""
    try:
        with ctx.sessions() as session, session.begin():
            row = get(session, key)
            source = row.client if row is not None else DEFAULT_CLIENT
            record_write(
                session,
                division=result.division,
                entity=result.entity,
                key=result.key,
                modified=result.modified,
                command=key,
                source=source,
            )
    except SQLAlchemyError as exc:
        log_event(log, "workers.command.write_not_recorded", logging.WARNING, key=key, error=type(exc).__name__)


def _commands_client(ctx: ConnectionContext, connection_id: int) -> ExactClient:
    """The connection's client, counting 4xx in the commands' own share of Exact's error block."""
    settings = ctx.settings
    budget = ErrorBudget(
        ctx.redis,
        prefix=settings.redis_prefix,
        client_id=str(ctx.app(connection_id).client_id),  # the connection's app: budgets are per app
        threshold=settings.commands_error_budget,
        share="commands",
    )
    return ctx.client(connection_id).with_errors(budget)


def _shown(candidates: list[Candidate]) -> list[dict[str, Any]]:
    return [{"exact_id": c.key, "code": c.label.strip() if isinstance(c.label, str) else c.label} for c in candidates]


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def _finish(
    ctx: ConnectionContext, key: str, status: CommandState, result: dict[str, Any], *, only_running: bool = False
) -> str:
    """Record and push the outcome. A database that refuses is retried for `commands_finish_retry_seconds`; the
    outcome is in Redis meanwhile, so if it still refuses, the sweeper records it later, Exact ID and all."""
    _remember(ctx, key, status, result)
    deadline = time.monotonic() + ctx.settings.commands_finish_retry_seconds
    pause = 0.25
    while True:
        try:
            lanes = _record(ctx, key, status, result, only_running)
            break
        except SQLAlchemyError as exc:
            if time.monotonic() + pause > deadline:
                log_event(
                    log,
                    "workers.command.finish_deferred",
                    logging.ERROR,
                    key=key,
                    status=status,
                    error=type(exc).__name__,
                )
                raise
            log_event(log, "workers.command.finish_retry", logging.WARNING, key=key, error=type(exc).__name__)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
    _forget(ctx, key)
    if lanes is None:
        return status  # the sweeper found it settled meanwhile
    dispatch_lanes(ctx.settings, lanes)
    level = logging.INFO if status == CommandState.SUCCEEDED else logging.WARNING
    # The key and state only: a result holds business data, which stays out of logs.
    log_event(log, "workers.command.finished", level, key=key, status=status)
    return status


def _record(
    ctx: ConnectionContext, key: str, status: CommandState, result: dict[str, Any], only_running: bool
) -> tuple[PushLane, ...] | None:
    """Store the outcome and hand it to the sinks in one transaction; the push lanes to dispatch after it."""
    with ctx.sessions() as session:
        row = finish(session, key, status, result, only_running=only_running)
        if row is None:
            return None
        shown = view(row).model_dump(mode="json")
        change = ChangeRecord(
            row.division,
            COMMANDS_TOPIC,
            change_key(key),
            "Update",
            shown,
            version=time.time_ns() // 1_000_000,
            origin=command_origin(key, row.client),
        )
        accepted = accept(session, [change], ctx.settings)
        session.commit()
    return accepted.lanes


def _outcome_key(ctx: ConnectionContext, key: str) -> str:
    return f"{ctx.settings.redis_prefix}commands:outcome:{key}"


def _remember(ctx: ConnectionContext, key: str, status: CommandState, result: dict[str, Any]) -> None:
    try:
        ctx.redis.set(_outcome_key(ctx, key), json.dumps({"status": status, "result": result}), ex=OUTCOME_TTL_SECONDS)
    except RedisError as exc:
        # Only a fallback for a database that refuses; without it the sweeper can only say `unknown`.
        log_event(log, "workers.command.outcome_not_kept", logging.WARNING, key=key, error=type(exc).__name__)


def _remembered(ctx: ConnectionContext, key: str) -> tuple[CommandState, dict[str, Any]] | None:
    raw = ctx.redis.get(_outcome_key(ctx, key))
    if raw is None:
        return None
    kept = json.loads(raw)
    return CommandState(kept["status"]), dict(kept["result"])


def _forget(ctx: ConnectionContext, key: str) -> None:
    try:
        ctx.redis.delete(_outcome_key(ctx, key))
    except RedisError:
        pass  # it expires; the sweeper only reads it for a command still `running`


def settle_stale(ctx: ConnectionContext) -> int:
    """Settle commands `running` for longer than a run may last (its hard time limit, plus the sweep delay): with
    the outcome their worker left in Redis when the database refused it, else as `unknown` (the worker died)."""
    settings = ctx.settings
    limit = settings.commands_time_limit_seconds + HARD_LIMIT_GRACE_SECONDS + settings.commands_sweep_after_seconds
    with ctx.sessions() as session:
        keys = stale_running(session, limit)
    for key in keys:
        status, result = _remembered(ctx, key) or (CommandState.UNKNOWN, _error("Interrupted", _INTERRUPTED))
        _finish(ctx, key, status, result, only_running=True)
    return len(keys)


# -- the Celery tasks
@shared_task(name=RUN_COMMAND, bind=True, acks_late=True, ignore_result=True, max_retries=None)  # type: ignore[untyped-decorator]
def run_command(self: Task, key: str) -> str:
    ctx = connection_context()
    try:
        return execute(ctx, key, owner=str(self.request.id))
    except Retry as exc:
        countdown = retry_countdown(self.request.retries, ctx.settings.broker_visibility_timeout, wish=exc.wait)
        raise self.retry(countdown=countdown) from exc


@shared_task(name=SWEEP_COMMANDS, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep_commands() -> int:
    return sweep(connection_context())


def sweep(ctx: ConnectionContext) -> int:
    """Resend commands whose task was lost (a duplicate task finds the command claimed and does nothing), and
    settle those left `running` past the time limit."""
    with ctx.sessions() as session:
        keys = stale_queued(session, ctx.settings.commands_sweep_after_seconds)
    for key in keys:
        enqueue(ctx.settings, key)
    return len(keys) + settle_stale(ctx)
