"""Push targets for the breaker, 410, Retry-After and credential tests: one that answers as told, one that hangs."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import ServerThread


@dataclass(frozen=True)
class Seen:
    webhook_id: str
    authorization: str | None
    arrived: float  # time.monotonic()
    answered: float


@dataclass
class ScriptedTarget:
    """Answers every POST with `status` and `headers` after `delay_seconds`; `seen` lists them in arrival order."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def endpoint(self, request: Request) -> Response:
        arrived = time.monotonic()
        await request.body()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        status, headers = self.status, dict(self.headers)
        seen = Seen(
            request.headers.get("webhook-id", ""), request.headers.get("authorization"), arrived, time.monotonic()
        )
        with self._lock:
            self.seen.append(seen)
        return Response(status_code=status, headers=headers)

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self.seen)

    def max_in_flight(self) -> int:
        """The most requests that were open at the same moment."""
        with self._lock:
            spans = [(s.arrived, s.answered) for s in self.seen]
        return max((sum(1 for a, b in spans if a <= start < b) for start, _ in spans), default=0)


@contextmanager
def serve_scripted(target: ScriptedTarget) -> Iterator[ServerThread]:
    with ServerThread(Starlette(routes=[Route("/push", target.endpoint, methods=["POST"])])) as server:
        yield server


@dataclass
class HangingTarget:
    """Accepts connections and never answers: every POST waits for its timeout. `connections` counts them."""

    url: str
    connections: int = 0


@contextmanager
def hanging_target() -> Iterator[HangingTarget]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    target = HangingTarget(f"http://127.0.0.1:{listener.getsockname()[1]}/push")
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            target.connections += 1

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
