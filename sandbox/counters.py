"""Call counts per endpoint, division, status and HTTP method, read by tests and benchmarks at `/_sandbox/calls`."""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

__all__ = ["WRITE_METHODS", "CallCounter"]

# "Write calls": what can change a record on the data plane.
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})


@dataclass
class CallCounter:
    """Counts every API call the sandbox answered (OAuth and control calls are not API calls)."""

    calls: Counter[tuple[str, int | None, int, str]] = field(default_factory=Counter)
    # (epoch seconds, endpoint, division, status, method) of recent calls, for tests that check spacing in time.
    log: deque[tuple[float, str, int | None, int, str]] = field(default_factory=lambda: deque(maxlen=20_000))

    def record(self, endpoint: str, division: int | None, status: int, method: str = "GET") -> None:
        self.calls[(endpoint, division, status, method)] += 1
        self.log.append((time.time(), endpoint, division, status, method))

    def total(
        self,
        *,
        endpoint: str | None = None,
        division: int | None = None,
        status: int | None = None,
        method: str | None = None,
    ) -> int:
        """Calls matching every filter given; `method` is one of GET, POST, PUT, DELETE, or "write" for the three
        that write."""
        wanted = WRITE_METHODS if method and method.lower() == "write" else {method.upper()} if method else None
        return sum(
            n
            for (e, d, s, m), n in self.calls.items()
            if (endpoint is None or e == endpoint)
            and (division is None or d == division)
            and (status is None or s == status)
            and (wanted is None or m in wanted)
        )

    def snapshot(self) -> list[dict[str, object]]:
        """One entry per endpoint, division and status, as always; `methods` splits its count by HTTP method."""
        grouped: dict[tuple[str, int | None, int], Counter[str]] = defaultdict(Counter)
        for (e, d, s, m), n in self.calls.items():
            grouped[(e, d, s)][m] += n
        return [
            {"endpoint": e, "division": d, "status": s, "count": sum(by.values()), "methods": dict(sorted(by.items()))}
            for (e, d, s), by in sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2]))
        ]

    def reset(self) -> None:
        self.calls.clear()
        self.log.clear()
