"""Exact's limits per app and division: a minute and a day window, their headers, and the 4xx error budget."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sandbox.clock import SandboxClock
from sandbox.config import SandboxConfig

__all__ = ["RateDecision", "RateLimiter"]

_ERROR_STATUSES = frozenset({400, 401, 403, 404})


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]


@dataclass
class _Window:
    start: float = 0.0
    used: int = 0


@dataclass
class RateLimiter:
    config: SandboxConfig
    clock: SandboxClock
    _minute: dict[tuple[str, int | None], _Window] = field(default_factory=dict)
    _day: dict[tuple[str, int | None], _Window] = field(default_factory=dict)
    _errors: dict[tuple[str, int | None, str], deque[float]] = field(default_factory=dict)
    _blocked: dict[tuple[str, int | None, str], float] = field(default_factory=dict)
    rejected: int = 0

    def _window(
        self, table: dict[tuple[str, int | None], _Window], key: tuple[str, int | None], length: float
    ) -> _Window:
        start = (self.clock.now() // length) * length
        window = table.setdefault(key, _Window(start))
        if window.start != start:
            window.start, window.used = start, 0
        return window

    def acquire(self, client_id: str, division: int | None) -> RateDecision:
        key = (client_id, division)
        minute_len = self.config.minute_window_seconds
        minute = self._window(self._minute, key, minute_len)
        day = self._window(self._day, key, 86400.0)
        minute_headers = {
            "X-RateLimit-Minutely-Limit": str(self.config.minute_limit),
            "X-RateLimit-Minutely-Reset": str(int((minute.start + minute_len) * 1000)),
        }
        day_headers = {
            "X-RateLimit-Limit": str(self.config.day_limit),
            "X-RateLimit-Reset": str(int((day.start + 86400.0) * 1000)),
        }
        # A 429 carries only the headers of the window that was hit.
        if day.used >= self.config.day_limit:
            self.rejected += 1
            return RateDecision(False, {**day_headers, "X-RateLimit-Remaining": "0"})
        if minute.used >= self.config.minute_limit:
            self.rejected += 1
            return RateDecision(False, {**minute_headers, "X-RateLimit-Minutely-Remaining": "0"})
        minute.used += 1
        day.used += 1
        return RateDecision(True, {
            **day_headers, "X-RateLimit-Remaining": str(self.config.day_limit - day.used),
            **minute_headers, "X-RateLimit-Minutely-Remaining": str(self.config.minute_limit - minute.used),
        })  # fmt: skip

    def blocked(self, client_id: str, division: int | None, endpoint: str) -> bool:
        until = self._blocked.get((client_id, division, endpoint))
        return until is not None and until > self.clock.now()

    def record_status(self, client_id: str, division: int | None, endpoint: str, status: int) -> None:
        if status not in _ERROR_STATUSES:
            return
        key = (client_id, division, endpoint)
        now = self.clock.now()
        errors = self._errors.setdefault(key, deque())
        errors.append(now)
        while errors and errors[0] <= now - 3600:
            errors.popleft()
        if len(errors) >= self.config.error_block_threshold:
            self._blocked[key] = now + self.config.error_block_seconds

    def snapshot(self) -> dict[str, object]:
        now = self.clock.now()
        minute = [{"client_id": c, "division": d, "used": w.used} for (c, d), w in self._minute.items()]
        day = [{"client_id": c, "division": d, "used": w.used} for (c, d), w in self._day.items()]
        errors = [
            {"client_id": c, "division": d, "endpoint": e, "count": len(q)} for (c, d, e), q in self._errors.items()
        ]
        blocked = [{"client_id": c, "division": d, "endpoint": e} for (c, d, e), t in self._blocked.items() if t > now]
        return {"minute": minute, "day": day, "errors": errors, "blocked": blocked, "rejected": self.rejected}

    def reset(self) -> None:
        self._minute.clear()
        self._day.clear()
        self._errors.clear()
        self._blocked.clear()
        self.rejected = 0
