"""Call counts per endpoint, division and status, read by tests and benchmarks through `/_sandbox/calls`."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

__all__ = ["CallCounter"]


@dataclass
class CallCounter:
    """Counts every API call the sandbox answered (OAuth and control calls are not API calls)."""

    calls: Counter[tuple[str, int | None, int]] = field(default_factory=Counter)
    # (epoch seconds, endpoint, division, status) of recent calls, for tests that check spacing in time.
    log: deque[tuple[float, str, int | None, int]] = field(default_factory=lambda: deque(maxlen=20_000))

    def record(self, endpoint: str, division: int | None, status: int) -> None:
        self.calls[(endpoint, division, status)] += 1
        self.log.append((time.time(), endpoint, division, status))

    def total(self, *, endpoint: str | None = None, division: int | None = None, status: int | None = None) -> int:
        return sum(
            n
            for (e, d, s), n in self.calls.items()
            if (endpoint is None or e == endpoint)
            and (division is None or d == division)
            and (status is None or s == status)
        )

    def snapshot(self) -> list[dict[str, object]]:
        return [
            {"endpoint": e, "division": d, "status": s, "count": n}
            for (e, d, s), n in sorted(self.calls.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2]))
        ]

    def reset(self) -> None:
        self.calls.clear()
        self.log.clear()
