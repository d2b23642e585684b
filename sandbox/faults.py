"""Injected faults: N failures with 500, slow answers, forced 429s, per endpoint or for all."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.guard import error_response

if TYPE_CHECKING:
    from sandbox.state import SandboxState

__all__ = ["Fault", "Faults", "routes"]

KINDS = ("error", "slow", "429")


@dataclass
class Fault:
    kind: str
    endpoint: str = "*"
    division: int | None = None
    remaining: int = 1
    delay: float = 0.0
    window_seconds: float = 60.0

    def matches(self, endpoint: str, division: int | None) -> bool:
        return (
            self.remaining > 0
            and self.endpoint in ("*", endpoint)
            and (self.division is None or self.division == division)
        )


@dataclass
class Faults:
    active: list[Fault] = field(default_factory=list)
    fired: int = 0

    def add(self, fault: Fault) -> None:
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {', '.join(KINDS)}")
        self.active.append(fault)

    def clear(self) -> None:
        self.active.clear()

    async def intercept(self, endpoint: str, division: int | None) -> Response | None:
        fault = next((f for f in self.active if f.matches(endpoint, division)), None)
        if fault is None:
            return None
        fault.remaining -= 1
        self.fired += 1
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind == "429":
            reset_ms = int((time.time() + fault.window_seconds) * 1000)
            return error_response(429, "Too Many Requests", headers={
                "X-RateLimit-Minutely-Limit": "60", "X-RateLimit-Minutely-Remaining": "0",
                "X-RateLimit-Minutely-Reset": str(reset_ms),
            })  # fmt: skip
        return error_response(500, "An error occurred. Please try again later.")


def routes(state: SandboxState) -> list[BaseRoute]:
    async def inject(request: Request) -> Response:
        body = await request.json()
        try:
            fault = Fault(
                kind=body["kind"],
                endpoint=body.get("endpoint", "*"),
                division=body.get("division"),
                remaining=int(body.get("count", 1)),
                delay=float(body.get("delay", 0.0)),
                window_seconds=float(body.get("window_seconds", state.config.minute_window_seconds)),
            )
            state.faults.add(fault)
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"faults": len(state.faults.active)}, status_code=201)

    async def clear(request: Request) -> Response:
        state.faults.clear()
        return JSONResponse({"faults": 0})

    async def show(request: Request) -> Response:
        active = [vars(f) for f in state.faults.active if f.remaining > 0]
        return JSONResponse({"faults": active, "fired": state.faults.fired})

    return [
        Route("/_sandbox/faults", inject, methods=["POST"]),
        Route("/_sandbox/faults", clear, methods=["DELETE"]),
        Route("/_sandbox/faults", show, methods=["GET"]),
    ]
