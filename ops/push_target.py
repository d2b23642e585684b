"""A connected system for the demo: receives the HTTP sink's pushes, verifies them, keeps the latest state per key.

It does what the README asks of a real receiver: verify the Standard Webhooks signature and timestamp, answer 2xx,
ignore a `webhook-id` it already has (a retry after a lost answer), and apply versions in order.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from delivery.sinks.http import secret_key, sign

__all__ = ["PushTarget", "verify"]

TOLERANCE_SECONDS = 300


def verify(key: bytes, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """A Standard Webhooks signature check: one `v1,` signature matches and the timestamp is within 5 minutes."""
    message_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not message_id or not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > TOLERANCE_SECONDS:
        return False
    expected = sign(key, message_id, int(stamp), body)
    return any(hmac.compare_digest(expected, given) for given in headers.get("webhook-signature", "").split())


@dataclass
class PushTarget:
    """Counts what arrived; `state` maps (division, topic, key) to the latest record (None once deleted)."""

    secret: str
    state: dict[tuple[int, str, str], dict[str, Any] | None] = field(default_factory=dict)
    received: int = 0
    duplicates: int = 0
    rejected: int = 0
    out_of_order: int = 0
    # When each (division, topic, key) was first delivered (time.monotonic()), for latency measurements.
    first_seen: dict[tuple[int, str, str], float] = field(default_factory=dict)
    _versions: dict[tuple[int, str, str], int] = field(default_factory=dict)
    _ids: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/push", self._endpoint, methods=["POST"])])

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not verify(secret_key(self.secret), headers, body):
            with self._lock:
                self.rejected += 1
            return Response(status_code=401)
        data = json.loads(body)["data"]
        lane = (int(data["division"]), str(data["topic"]), str(data["key"]))
        version = int(headers["webhook-id"].split(":")[3])  # event id: division:topic:key:version:action
        with self._lock:
            self.received += 1
            if headers["webhook-id"] in self._ids:
                self.duplicates += 1
                return Response(status_code=200)
            self._ids.add(headers["webhook-id"])
            self.first_seen.setdefault(lane, time.monotonic())
            if version < self._versions.get(lane, -1):
                self.out_of_order += 1
            else:
                self._versions[lane] = version
                self.state[lane] = data["record"]
        return Response(status_code=200)

    def snapshot(self) -> dict[tuple[int, str, str], dict[str, Any] | None]:
        with self._lock:
            return dict(self.state)
