"""The path every `/api/v1` call takes: count, faults, auth, error block, rate limit, handler, headers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from sandbox.counters import CLASS_HEADER
from sandbox.errors import error_response

if TYPE_CHECKING:
    from sandbox.state import SandboxState

__all__ = ["CallContext", "Handler", "guarded"]


@dataclass(frozen=True)
class CallContext:
    """Who is calling which division; handed to every data-plane handler."""

    client_id: str
    user_id: str
    division: int | None


Handler = Callable[[Request, CallContext], Awaitable[Response]]


def guarded(state: SandboxState, endpoint: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a data-plane handler in production's gauntlet. `endpoint` names it for counts and error budgets,
    e.g. "crm/Accounts" or "sync/CRM/Accounts"."""

    async def endpoint_fn(request: Request) -> Response:
        raw_division = request.path_params.get("division")
        division = int(raw_division) if raw_division is not None and str(raw_division).isdigit() else None
        arrived = time.time()
        response = await _run(state, endpoint, handler, request, division)
        budget_class = request.headers.get(CLASS_HEADER, "")
        state.counters.record(endpoint, division, response.status_code, request.method, budget_class, arrived)
        return response

    return endpoint_fn


async def _run(
    state: SandboxState, endpoint: str, handler: Handler, request: Request, division: int | None
) -> Response:
    if request.method in ("POST", "PUT"):
        # Production has the whole body before it is slow to act on it, so a client that gives up still wrote.
        await request.body()
    faulted = await state.faults.intercept(endpoint, division, request.method)
    if faulted is not None:
        return faulted
    grant = state.oauth.authenticate(request.headers.get("authorization"))
    if grant is None:
        return error_response(401, "Unauthorized")
    budget_division = division if division is not None else state.store.current_division(grant.user_id)
    if state.limiter.blocked(grant.client_id, budget_division, endpoint):
        return error_response(429, "API key blocked: too many errors on this endpoint in the last hour")
    decision = state.limiter.acquire(grant.client_id, budget_division)
    if not decision.allowed:
        return error_response(429, "Too Many Requests", headers=decision.headers)
    context = CallContext(client_id=grant.client_id, user_id=grant.user_id, division=division)
    if "json" not in request.headers.get("accept", ""):
        # Production answers Atom/XML without `Accept: application/json`.
        response: Response = Response('<?xml version="1.0" encoding="utf-8"?><feed/>', media_type="application/xml")
    else:
        response = await handler(request, context)
        # A `drop` fault: the call ran (and wrote); the client gets a 500 instead of its answer.
        response = state.faults.dropped(endpoint, division, request.method) or response
    state.limiter.record_status(grant.client_id, budget_division, endpoint, response.status_code)
    response.headers.update(decision.headers)
    return response
