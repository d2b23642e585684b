"""The sandbox's clock: real time plus an offset that tests advance instead of sleeping."""

from __future__ import annotations

import time

__all__ = ["SandboxClock"]


class SandboxClock:
    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        """Seconds since the epoch, as the sandbox sees them."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
