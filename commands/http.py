"""`POST /commands` and `GET /commands/{key}`: connected systems submit writes to Exact and read their results.

Bearer-token authenticated (COMMANDS_TOKEN, the all-access client, or a named client's token: `commands.clients`),
validated with pydantic, idempotent by the client's key: the command is committed to the database before the answer,
then handed to the workers (the sweeper resends one whose task was lost). 202 for a new command, 200 with the kept
state for a repeat, 409 for a key reused with another body (or by another client), 401 for a wrong token, 403 for a
division or entity the client may not write, 400/413/408/422 for a bad body, 503 when commands are not configured or
the database is down. A named client sees only its own commands; another's is a 404.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, TypedDict, cast

from kombu.exceptions import KombuError
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from commands.clients import ALL_ACCESS, Client, any_client, authenticate
from commands.schema import Command, CommandView, load_json
from commands.store import KeyReused, get, submit, view
from runtime.bodies import BodyRefused, read_body
from runtime.logging import log_event
from runtime.settings import Settings


class State(TypedDict):
    """What these endpoints need of the app's lifespan state (the receiver's `State` has these and more)."""

    settings: Settings
    engine: Engine


__all__ = ["command_status", "submit_command"]

log = logging.getLogger("receiver")


def _problem(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status, headers=headers)


async def _authenticate(request: Request, state: State) -> Client | JSONResponse:
    """The client the bearer token is of: COMMANDS_TOKEN's all-access `default`, or a named client; else the answer."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    bearer = value.strip() if scheme.lower() == "bearer" else ""
    secret = state["settings"].commands_token
    token = secret.get_secret_value() if secret is not None else ""
    # An empty COMMANDS_TOKEN (a copied .env.example) must not make an empty bearer valid.
    configured = bool(token.strip())
    if configured and bearer and hmac.compare_digest(bearer.encode(), token.encode()):
        return ALL_ACCESS
    if configured and not bearer:
        return _unauthorized()
    try:
        named, on = await run_in_threadpool(_named, state, bearer, configured)
    except SQLAlchemyError:
        return _problem(503, "the database is unavailable")
    if named is not None:
        return named
    if not on:
        return _problem(503, "commands are off: set COMMANDS_TOKEN, or add a client (`exact-pipeline clients add`)")
    return _unauthorized()


def _named(state: State, bearer: str, configured: bool) -> tuple[Client | None, bool]:
    """The named client of `bearer`, and whether commands are on (COMMANDS_TOKEN is set, or a named client exists)."""
    with Session(state["engine"]) as session:
        named = authenticate(session, bearer) if bearer else None
        return named, configured or named is not None or any_client(session)


def _unauthorized() -> JSONResponse:
    challenge = {"WWW-Authenticate": 'Bearer realm="commands"'}
    return _problem(401, "a valid 'Authorization: Bearer <COMMANDS_TOKEN or a client's token>' is required", challenge)


async def submit_command(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    client = await _authenticate(request, state)
    if isinstance(client, Response):
        return client
    settings = state["settings"]
    body = await read_body(request, settings.commands_max_body_bytes, settings.webhook_body_timeout_seconds)
    if isinstance(body, BodyRefused):
        return _problem(body.status, body.detail)
    if not body:
        return _problem(400, "empty body: a command is JSON")
    try:
        command = Command.model_validate(load_json(body))
    except ValueError as exc:  # json's and pydantic's errors both
        return _invalid(exc)
    if (refused := client.refusal(command)) is not None:
        log_event(log, "receiver.command.refused", key=command.key, client=client.name, division=command.division)
        return _problem(403, refused)
    try:
        shown, created = await run_in_threadpool(_keep, state, command, client)
    except KeyReused as exc:
        return _problem(409, str(exc))
    except SQLAlchemyError as exc:
        log_event(log, "receiver.command.db_unavailable", logging.ERROR, key=command.key, error=type(exc).__name__)
        return _problem(503, "the database did not take the command; send it again with the same key")
    if created:
        try:
            await run_in_threadpool(_enqueue, state, command.key)
        except (RedisError, KombuError, OSError) as exc:
            # Kept, so not lost: the sweeper hands it on once Redis is back.
            log_event(log, "receiver.command.enqueue_failed", logging.WARNING, key=command.key, error=str(exc))
    log_event(
        log,
        "receiver.command",
        key=command.key,
        division=command.division,
        entity=command.entity,
        action=command.action,
        new=created,
    )
    headers = {"Location": f"/commands/{command.key}"}
    return JSONResponse(shown.model_dump(mode="json"), status_code=202 if created else 200, headers=headers)


async def command_status(request: Request) -> Response:
    state = cast("State", request.scope["state"])
    client = await _authenticate(request, state)
    if isinstance(client, Response):
        return client
    key = request.path_params["key"]
    try:
        shown = await run_in_threadpool(_read, state, key, client)
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


def _keep(state: State, command: Command, client: Client) -> tuple[CommandView, bool]:
    with Session(state["engine"]) as session:
        row, created = submit(session, command, client=client.name)
        return view(row), created


def _read(state: State, key: str, client: Client) -> CommandView | None:
    with Session(state["engine"]) as session:
        row = get(session, key)
        # Another client's command is answered like a missing one: not even its existence is shown.
        return view(row) if row is not None and client.may_see(row.client) else None


def _enqueue(state: State, key: str) -> None:
    from commands.tasks import enqueue

    enqueue(state["settings"], key)
