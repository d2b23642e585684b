"""Exact's limits per app and division: a minute and a day window, their headers, and the 4xx error budget.

Control API (this module):
    POST /_sandbox/limits            {"minute_limit": 5, "day_limit": 100, "minute_window_seconds": 2.0,
                                      "error_block_threshold": 3, "error_block_seconds": 60}: change limits now
    POST /_sandbox/limits/force429   {"count": N, "window": "minutely"|"daily", "division": 101?, "client_id": …?}:
                                     the next N calls that reach the limiter are refused with that window's 429
`GET /_sandbox/limits` and `POST /_sandbox/limits/reset` (sandbox/control.py) read `snapshot()` and call `reset()`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig

__all__ = ["RateDecision", "RateLimiter", "routes"]

# Exact counts these answers against the error budget.
_ERROR_STATUSES = frozenset({400, 401, 403, 404})
_DAY = 86400.0
_HOUR = 3600.0

WindowName = Literal["minutely", "daily"]
_Key = tuple[str, int | None]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]


@dataclass
class _Window:
    start: float = 0.0
    used: int = 0


@dataclass
class _Forced:
    """N forced 429s of one window, optionally only for one app or division."""

    window: WindowName
    remaining: int
    client_id: str | None = None
    division: int | None = None

    def matches(self, client_id: str, division: int | None) -> bool:
        return (
            self.remaining > 0
            and (self.client_id is None or self.client_id == client_id)
            and (self.division is None or self.division == division)
        )


@dataclass
class RateLimiter:
    config: SandboxConfig
    clock: SandboxClock
    _minute: dict[_Key, _Window] = field(default_factory=dict)
    _day: dict[_Key, _Window] = field(default_factory=dict)
    _errors: dict[tuple[str, int | None, str], deque[float]] = field(default_factory=dict)
    _blocked: dict[tuple[str, int | None, str], float] = field(default_factory=dict)
    _forced: list[_Forced] = field(default_factory=list)
    rejected: int = 0
    forced_rejected: int = 0

    # windows
    def _window(self, table: dict[_Key, _Window], key: _Key, length: float) -> _Window:
        """The current fixed window: aligned on multiples of `length` of the sandbox clock (UTC midnight for days)."""
        start = (self.clock.now() // length) * length
        window = table.setdefault(key, _Window(start))
        if window.start != start:
            window.start, window.used = start, 0
        return window

    def _minute_headers(self, window: _Window, remaining: int) -> dict[str, str]:
        return {
            "X-RateLimit-Minutely-Limit": str(self.config.minute_limit),
            "X-RateLimit-Minutely-Remaining": str(max(remaining, 0)),
            "X-RateLimit-Minutely-Reset": str(int((window.start + self.config.minute_window_seconds) * 1000)),
        }

    def _day_headers(self, window: _Window, remaining: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.config.day_limit),
            "X-RateLimit-Remaining": str(max(remaining, 0)),
            "X-RateLimit-Reset": str(int((window.start + _DAY) * 1000)),
        }

    def acquire(self, client_id: str, division: int | None) -> RateDecision:
        """Spend one call of both windows, or refuse with only the headers of the window that was hit."""
        key = (client_id, division)
        minute = self._window(self._minute, key, self.config.minute_window_seconds)
        day = self._window(self._day, key, _DAY)
        forced = next((f for f in self._forced if f.matches(client_id, division)), None)
        if forced is not None:
            forced.remaining -= 1
            self.forced_rejected += 1
            if forced.window == "daily":
                return RateDecision(False, self._day_headers(day, 0))
            return RateDecision(False, self._minute_headers(minute, 0))
        # Refused calls spend nothing: neither window moves.
        if day.used >= self.config.day_limit:
            self.rejected += 1
            return RateDecision(False, self._day_headers(day, 0))
        if minute.used >= self.config.minute_limit:
            self.rejected += 1
            return RateDecision(False, self._minute_headers(minute, 0))
        minute.used += 1
        day.used += 1
        return RateDecision(
            True,
            {
                **self._day_headers(day, self.config.day_limit - day.used),
                **self._minute_headers(minute, self.config.minute_limit - minute.used),
            },
        )

    def force(
        self, count: int, window: WindowName = "minutely", *, client_id: str | None = None, division: int | None = None
    ) -> None:
        """Refuse the next `count` matching calls with a 429 of `window`, whatever the budget says."""
        self._forced.append(_Forced(window, count, client_id, division))

    # error budget
    def blocked(self, client_id: str, division: int | None, endpoint: str) -> bool:
        until = self._blocked.get((client_id, division, endpoint))
        return until is not None and until > self.clock.now()

    def record_status(self, client_id: str, division: int | None, endpoint: str, status: int) -> None:
        """Count a 400/401/403/404; the threshold-th in an hour blocks the endpoint for `error_block_seconds`."""
        if status not in _ERROR_STATUSES:
            return
        key = (client_id, division, endpoint)
        now = self.clock.now()
        errors = self._errors.setdefault(key, deque())
        errors.append(now)
        while errors and errors[0] <= now - _HOUR:
            errors.popleft()
        if len(errors) >= self.config.error_block_threshold:
            self._blocked[key] = now + self.config.error_block_seconds

    # control
    def snapshot(self) -> dict[str, object]:
        now = self.clock.now()
        minute_len = self.config.minute_window_seconds
        minute = [
            {
                "client_id": c,
                "division": d,
                "used": w.used,
                "remaining": max(self.config.minute_limit - w.used, 0),
                "reset_ms": int((w.start + minute_len) * 1000),
                "current": w.start == (now // minute_len) * minute_len,
            }
            for (c, d), w in self._minute.items()
        ]
        day = [
            {
                "client_id": c,
                "division": d,
                "used": w.used,
                "remaining": max(self.config.day_limit - w.used, 0),
                "reset_ms": int((w.start + _DAY) * 1000),
                "current": w.start == (now // _DAY) * _DAY,
            }
            for (c, d), w in self._day.items()
        ]
        errors = [
            {"client_id": c, "division": d, "endpoint": e, "count": sum(1 for t in q if t > now - _HOUR)}
            for (c, d, e), q in self._errors.items()
        ]
        blocked = [
            {"client_id": c, "division": d, "endpoint": e, "until_ms": int(t * 1000)}
            for (c, d, e), t in self._blocked.items()
            if t > now
        ]
        forced = [vars(f) for f in self._forced if f.remaining > 0]
        return {
            "limits": {
                "minute_limit": self.config.minute_limit,
                "minute_window_seconds": minute_len,
                "day_limit": self.config.day_limit,
                "error_block_threshold": self.config.error_block_threshold,
                "error_block_seconds": self.config.error_block_seconds,
            },
            "minute": minute,
            "day": day,
            "errors": errors,
            "blocked": blocked,
            "forced": forced,
            "rejected": self.rejected,
            "forced_rejected": self.forced_rejected,
        }

    def reset(self) -> None:
        self._minute.clear()
        self._day.clear()
        self._errors.clear()
        self._blocked.clear()
        self._forced.clear()
        self.rejected = 0
        self.forced_rejected = 0


class _LimitsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minute_limit: int | None = Field(default=None, ge=0)
    minute_window_seconds: float | None = Field(default=None, gt=0)
    day_limit: int | None = Field(default=None, ge=0)
    error_block_threshold: int | None = Field(default=None, ge=1)
    error_block_seconds: float | None = Field(default=None, ge=0)


class _ForceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1)
    window: WindowName = "minutely"
    client_id: str | None = None
    division: int | None = None


def routes(limiter: RateLimiter) -> list[BaseRoute]:
    async def change(request: Request) -> Response:
        try:
            body = _LimitsBody.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": exc.errors(include_url=False, include_context=False)}, status_code=400)
        for name, value in body.model_dump(exclude_none=True).items():
            setattr(limiter.config, name, value)
        return JSONResponse(limiter.snapshot())

    async def force429(request: Request) -> Response:
        try:
            body = _ForceBody.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return JSONResponse({"error": exc.errors(include_url=False, include_context=False)}, status_code=400)
        limiter.force(body.count, body.window, client_id=body.client_id, division=body.division)
        return JSONResponse(limiter.snapshot(), status_code=201)

    return [
        Route("/_sandbox/limits", change, methods=["POST"]),
        Route("/_sandbox/limits/force429", force429, methods=["POST"]),
    ]
