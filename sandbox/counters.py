"""Call counts per endpoint, division, status, HTTP method and budget class, read at `/_sandbox/calls`."""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field

__all__ = ["CLASS_HEADER", "WRITE_METHODS", "CallCounter"]

# "Write calls": what can change a record on the data plane.
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})

# The header the pipeline names a call's budget class in (Exact ignores it); "" when a call names none.
CLASS_HEADER = "X-Exact-Pipeline-Class"


@dataclass
class CallCounter:
    """Counts every API call the sandbox answered (OAuth and control calls are not API calls)."""

    calls: Counter[tuple[str, int | None, int, str, str]] = field(default_factory=Counter)
    # (epoch seconds, endpoint, division, status, method, class) of recent calls, for tests that check spacing in time.
    log: deque[tuple[float, str, int | None, int, str, str]] = field(default_factory=lambda: deque(maxlen=20_000))

    def record(
        self,
        endpoint: str,
        division: int | None,
        status: int,
        method: str = "GET",
        budget_class: str = "",
        at: float | None = None,
    ) -> None:
        """Count one answered call; `at` is when it arrived (Exact's windows count arrivals), default now."""
        self.calls[(endpoint, division, status, method, budget_class)] += 1
        self.log.append((time.time() if at is None else at, endpoint, division, status, method, budget_class))

    def total(
        self,
        *,
        endpoint: str | None = None,
        division: int | None = None,
        status: int | None = None,
        method: str | None = None,
        budget_class: str | None = None,
    ) -> int:
        """Calls matching every filter given; `method` is one of GET, POST, PUT, DELETE, or "write" for the three
        that write; `budget_class` the class a call named ("" for none)."""
        wanted = WRITE_METHODS if method and method.lower() == "write" else {method.upper()} if method else None
        return sum(
            n
            for (e, d, s, m, c), n in self.calls.items()
            if (endpoint is None or e == endpoint)
            and (division is None or d == division)
            and (status is None or s == status)
            and (wanted is None or m in wanted)
            and (budget_class is None or c == budget_class)
        )

    def by_class(self, *, division: int | None = None) -> dict[str, int]:
        """Calls per budget class ("" for calls that named none), of one division or all."""
        counts: Counter[str] = Counter()
        for (_e, d, _s, _m, c), n in self.calls.items():
            if division is None or d == division:
                counts[c] += n
        return dict(sorted(counts.items()))

    def snapshot(self) -> list[dict[str, object]]:
        """One entry per endpoint, division and status, as always; `methods` splits its count by HTTP method and
        `classes` by the budget class the calls named."""
        grouped: dict[tuple[str, int | None, int], Counter[str]] = defaultdict(Counter)
        classes: dict[tuple[str, int | None, int], Counter[str]] = defaultdict(Counter)
        for (e, d, s, m, c), n in self.calls.items():
            grouped[(e, d, s)][m] += n
            classes[(e, d, s)][c] += n
        return [
            {
                "endpoint": e,
                "division": d,
                "status": s,
                "count": sum(by.values()),
                "methods": dict(sorted(by.items())),
                "classes": dict(sorted(classes[(e, d, s)].items())),
            }
            for (e, d, s), by in sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2]))
        ]

    def reset(self) -> None:
        self.calls.clear()
        self.log.clear()
