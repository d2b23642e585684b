"""Injected faults: N failures with 500, slow answers, timeouts, forced 429s, foreign links, per endpoint or for all;
and schema faults, which change the shape of a resource's answers until cleared.

Control API:
    POST   /_sandbox/faults   {"kind": "error"|"slow"|"timeout"|"429"|"next"|"drop", "endpoint": "crm/Contacts"|"*",
                               "division": 101?, "method": "POST"?, "count": N, "delay": S, "status": 500,
                               "window_seconds": S, "url": "http://…"}
    POST   /_sandbox/faults   {"kind": "schema", "path": "crm/Accounts"|"sync/CRM/Accounts", "division": 101?,
                               "drop": "Email"|["Email", …], "rename": {"Email": "EMail"},
                               "date_format": {"Modified": "iso"}, "rows": "headers"|"lines"}
    GET    /_sandbox/faults   the faults still armed (schema faults too) and how many fired
    DELETE /_sandbox/faults   disarm all, schema faults included
Kinds: `error` answers `status` (500) with Exact's error body; `slow` waits `delay` real seconds, then the call runs
normally (a client that gave up still caused the write); `timeout` waits `delay` real seconds and answers 504 without
running the call; `429` answers Too Many Requests with only the minutely headers, reset `window_seconds` from now
(default: the next whole window of the sandbox clock); `next` answers a page with no records whose `__next` is `url`
(a link off the sandbox's host); `drop` lets the call run (the record is written, webhooks fire) and replaces its
answer by `status` (500) with Exact's error body, so the client cannot know the write landed; it hits write calls
(POST, PUT, DELETE) only unless `method` says otherwise. `method` narrows any fault to calls of that HTTP method.
Faults fire before authentication and rate limits; a `drop` after the call ran.
A `schema` fault is no count of calls: it holds until DELETE. It drops or renames fields, serves dates as ISO 8601,
or changes the row shape of one resource path (service or sync), optionally of one division; a fault that does not
fit its resource (no such path or field, a shape it cannot take) is a 400. See `schema_faults`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig
from sandbox.errors import error_response
from sandbox.schema_faults import SchemaFaultBody, SchemaFaults

__all__ = ["Fault", "FaultKind", "Faults", "routes"]

_DEFAULT_TIMEOUT_DELAY = 30.0


class FaultKind(StrEnum):
    """What an armed fault does to the call it hits (see the module docstring)."""

    ERROR = "error"
    SLOW = "slow"
    TIMEOUT = "timeout"
    RATE_LIMITED = "429"
    NEXT = "next"
    DROP = "drop"


# The control API's spelling of `FaultKind`: a Literal keeps its 400 body (`literal_error`) as it always was.
_WireKind = Literal["error", "slow", "timeout", "429", "next", "drop"]
_WRITES = frozenset({"POST", "PUT", "DELETE"})


@dataclass
class Fault:
    kind: FaultKind
    endpoint: str = "*"
    division: int | None = None
    remaining: int = 1
    delay: float = 0.0
    status: int = 500
    window_seconds: float | None = None
    url: str | None = None
    method: str | None = None

    def matches(self, endpoint: str, division: int | None, method: str | None = None) -> bool:
        if self.method is not None and method is not None and self.method.upper() != method.upper():
            return False
        if self.kind == FaultKind.DROP and self.method is None and method not in _WRITES:
            return False
        return (
            self.remaining > 0
            and (self.endpoint == "*" or self.endpoint.lower() == endpoint.lower())
            and (self.division is None or self.division == division)
        )


@dataclass
class Faults:
    config: SandboxConfig = field(default_factory=SandboxConfig)
    clock: SandboxClock = field(default_factory=SandboxClock)
    active: list[Fault] = field(default_factory=list)
    fired: int = 0
    schema: SchemaFaults = field(default_factory=SchemaFaults)

    def add(self, fault: Fault) -> None:
        self.active.append(fault)

    def clear(self) -> None:
        self.active.clear()
        self.schema.clear()

    def _take(self, endpoint: str, division: int | None, method: str | None, *, drop: bool) -> Fault | None:
        """The first armed fault for this call (a `drop`, or any other kind), used up by one."""
        fault = next(
            (f for f in self.active if (f.kind == FaultKind.DROP) == drop and f.matches(endpoint, division, method)),
            None,
        )
        if fault is not None:
            fault.remaining -= 1
            self.fired += 1
            self.active = [f for f in self.active if f.remaining > 0]
        return fault

    def dropped(self, endpoint: str, division: int | None, method: str) -> Response | None:
        """The answer replacing the one of a call that ran, when a `drop` fault hits it; else None."""
        fault = self._take(endpoint, division, method, drop=True)
        return None if fault is None else error_response(fault.status, "An error occurred. Please try again later.")

    async def intercept(self, endpoint: str, division: int | None, method: str | None = None) -> Response | None:
        """A faulty answer for this call, or None to let it run (after a delay, for `slow`)."""
        fault = self._take(endpoint, division, method, drop=False)
        if fault is None:
            return None
        if fault.kind == FaultKind.SLOW:
            # Real time on purpose: the point is a client's real timeout.
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind == FaultKind.TIMEOUT:
            await asyncio.sleep(fault.delay or _DEFAULT_TIMEOUT_DELAY)
            return error_response(504, "Gateway Timeout")
        if fault.kind == FaultKind.RATE_LIMITED:
            return error_response(429, "Too Many Requests", headers=self._minutely_headers(fault))
        if fault.kind == FaultKind.NEXT:
            return JSONResponse({"d": {"results": [], "__next": fault.url}})
        return error_response(fault.status, "An error occurred. Please try again later.")

    def _minutely_headers(self, fault: Fault) -> dict[str, str]:
        now = self.clock.now()
        if fault.window_seconds is not None:
            reset = now + fault.window_seconds
        else:
            length = self.config.minute_window_seconds
            reset = (now // length + 1) * length
        return {
            "X-RateLimit-Minutely-Limit": str(self.config.minute_limit),
            "X-RateLimit-Minutely-Remaining": "0",
            "X-RateLimit-Minutely-Reset": str(int(reset * 1000)),
        }

    def snapshot(self) -> dict[str, object]:
        counted = [vars(f) for f in self.active if f.remaining > 0]
        return {"faults": [*counted, *self.schema.snapshot()], "fired": self.fired}


class _FaultBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: _WireKind
    endpoint: str = "*"
    division: int | None = None
    count: int = Field(default=1, ge=1)
    delay: float = Field(default=0.0, ge=0)
    status: int = Field(default=500, ge=400, le=599)
    window_seconds: float | None = Field(default=None, gt=0)
    url: str | None = None
    method: Literal["GET", "POST", "PUT", "DELETE"] | None = None

    @model_validator(mode="after")
    def _next_has_url(self) -> _FaultBody:
        if self.kind == "next" and not self.url:
            raise ValueError("a `next` fault needs the `url` its page links to")
        return self


def _kind(raw: bytes) -> object:
    """The `kind` a body names, before it is validated (a schema fault has a body of its own)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data.get("kind") if isinstance(data, dict) else None


def routes(faults: Faults) -> list[BaseRoute]:
    async def inject(request: Request) -> Response:
        raw = await request.body()
        try:
            if _kind(raw) == "schema":
                faults.schema.add(SchemaFaultBody.model_validate_json(raw).fault())
                return JSONResponse(faults.snapshot(), status_code=201)
            body = _FaultBody.model_validate_json(raw)
        except ValidationError as exc:
            return JSONResponse({"error": exc.errors(include_url=False, include_context=False)}, status_code=400)
        fault = Fault(
            kind=FaultKind(body.kind),
            endpoint=body.endpoint,
            division=body.division,
            remaining=body.count,
            delay=body.delay,
            status=body.status,
            window_seconds=body.window_seconds,
            url=body.url,
            method=body.method,
        )
        faults.add(fault)
        return JSONResponse(faults.snapshot(), status_code=201)

    async def clear(request: Request) -> Response:
        faults.clear()
        return JSONResponse(faults.snapshot())

    async def show(request: Request) -> Response:
        return JSONResponse(faults.snapshot())

    return [
        Route("/_sandbox/faults", inject, methods=["POST"]),
        Route("/_sandbox/faults", clear, methods=["DELETE"]),
        Route("/_sandbox/faults", show, methods=["GET"]),
    ]
