"""`POST /commands` and `GET /commands/{key}`: connected systems submit writes to Exact and read their results.

Bearer-token authenticated (COMMANDS_TOKEN), validated with pydantic, idempotent by the client's key: the command
is committed to the database before the answer, then handed to the workers (the sweeper resends one whose task was
lost). 202 for a new command, 200 with the kept state for a repeat, 409 for a key reused with another body, 401 for
a wrong token, 400/413/408/422 for a bad body, 503 when commands are not configured or the database is down.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from commands.schema import Command, CommandView
from commands.store import KeyReused, get, submit, view
from receiver.routes import Outcome, read_body
from runtime.logging import log_event

if TYPE_CHECKING:
    from receiver.app import State

__all__ = ["command_status", "submit_command"]

log = logging.getLogger("receiver")


def _problem(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


def _denied(request: Request, state: State) -> JSONResponse | None:
    token = state["settings"].commands_token
    if token is None or not token.get_secret_value().strip():
        # An empty COMMANDS_TOKEN (a copied .env.example) must not make an empty bearer valid.
        return _problem(503, "commands are off: set COMMANDS_TOKEN to accept them")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.get_secret_value().encode()):
        return _problem(401, "a valid 'Authorization: Bearer <COMMANDS_TOKEN>' is required",
                        {"WWW-Authenticate": 'Bearer realm="commands"'})  # fmt: skip
    return None


async def submit_command(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    if (denied := _denied(request, state)) is not None:
        return denied
    settings = state["settings"]
    body = await read_body(request, settings.commands_max_body_bytes, settings.webhook_body_timeout_seconds)
    if isinstance(body, Outcome):
        return _problem(400 if body.status == 200 else body.status, body.detail or "empty body: a command is JSON")
    try:
        command = Command.model_validate(json.loads(body))
    except ValueError as exc:  # json's and pydantic's errors both
        return _invalid(exc)
    try:
        shown, created = await run_in_threadpool(_keep, state, command)
    except KeyReused as exc:
        return _problem(409, str(exc))
    except SQLAlchemyError as exc:
        log_event(log, "receiver.command.db_unavailable", logging.ERROR, key=command.key, error=type(exc).__name__)
        return _problem(503, "the database did not take the command; send it again with the same key")
    if created:
        try:
            await run_in_threadpool(_enqueue, state, command.key)
        except (RedisError, OSError) as exc:
            # Kept, so not lost: the sweeper hands it on once Redis is back.
            log_event(log, "receiver.command.enqueue_failed", logging.WARNING, key=command.key, error=str(exc))
    log_event(log, "receiver.command", key=command.key, division=command.division, entity=command.entity,
              action=command.action, new=created)  # fmt: skip
    headers = {"Location": f"/commands/{command.key}"}
    return JSONResponse(shown.model_dump(mode="json"), status_code=202 if created else 200, headers=headers)


async def command_status(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    if (denied := _denied(request, state)) is not None:
        return denied
    key = request.path_params["key"]
    try:
        shown = await run_in_threadpool(_read, state, key)
    except SQLAlchemyError:
        return _problem(503, "the database is unavailable")
    if shown is None:
        return _problem(404, f"no command with key {key!r}")
    return JSONResponse(shown.model_dump(mode="json"))


def _invalid(exc: ValueError) -> JSONResponse:
    if isinstance(exc, ValidationError):
        errors = [{"loc": ".".join(str(p) for p in e["loc"]) or "body", "msg": e["msg"]} for e in exc.errors()]
        return _problem(422, errors)
    return _problem(400, f"body is not JSON: {exc}")


def _keep(state: State, command: Command) -> tuple[CommandView, bool]:
    with Session(state["engine"]) as session:
        row, created = submit(session, command)
        return view(row), created


def _read(state: State, key: str) -> CommandView | None:
    with Session(state["engine"]) as session:
        row = get(session, key)
        return view(row) if row is not None else None


def _enqueue(state: State, key: str) -> None:
    from workers.commands import enqueue

    enqueue(state["settings"], key)
