"""A real push target for delivery tests, and a real Celery worker process on the deliveries queue.

The target verifies every request with the `standardwebhooks` package, dedupes by `webhook-id` as the spec asks,
records what it accepted, and can be told to fail the next N requests, to be down, or to be slow.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.contracts import DELIVERIES_QUEUE
from runtime.settings import Settings
from tests.conftest import ServerThread
from workers.cli import worker_argv

PUSH_SECRET = "whsec_" + base64.b64encode(b"push-target-secret-0123456789ab").decode()


@dataclass
class Accepted:
    webhook_id: str
    payload: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.webhook_id.split(":")[3])


@dataclass
class PushTarget:
    """What it accepted, in order; `requests` counts every request that reached it, verified or not."""

    secret: str = PUSH_SECRET
    fail_next: int = 0
    fail_status: int = 503
    down: bool = False
    delay_seconds: float = 0.0
    accepted: list[Accepted] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: int = 0
    requests: int = 0
    _ids: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.requests += 1
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            with self._lock:
                self.rejected += 1
            return Response(status_code=401)
        with self._lock:
            if self.down:
                return Response(status_code=503)
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response(status_code=self.fail_status)
            webhook_id = request.headers["webhook-id"]
            if webhook_id in self._ids:
                self.duplicates.append(webhook_id)  # a retry of one we have: 2xx, and nothing happens again
            else:
                self._ids.add(webhook_id)
                self.accepted.append(Accepted(webhook_id, payload))
        return Response(status_code=204)

    def ids(self) -> list[str]:
        with self._lock:
            return [a.webhook_id for a in self.accepted]

    def versions(self, key: str) -> list[int]:
        with self._lock:
            return [a.version for a in self.accepted if a.payload["data"]["key"] == key]

    def lanes(self) -> dict[tuple[int, str, str], list[Accepted]]:
        """What each (division, topic, key) received, in arrival order."""
        found: dict[tuple[int, str, str], list[Accepted]] = {}
        with self._lock:
            for a in self.accepted:
                data = a.payload["data"]
                found.setdefault((data["division"], data["topic"], data["key"]), []).append(a)
        return found

    def latest(self) -> dict[tuple[int, str, str], dict[str, Any] | None]:
        """The record each (division, topic, key) received last (None: deleted)."""
        return {lane: received[-1].payload["data"]["record"] for lane, received in self.lanes().items()}


@contextmanager
def serve_push_target(target: PushTarget) -> Iterator[ServerThread]:
    app = Starlette(routes=[Route("/push", target.endpoint, methods=["POST"])])
    with ServerThread(app) as server:
        yield server


def push_settings(settings: Settings, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sinks": "sql,http",
        "push_url": url,
        "push_secret": SecretStr(PUSH_SECRET),
        "delivery_max_attempts": 4,
        "delivery_backoff_seconds": 0.05,
        "delivery_backoff_max_seconds": 0.5,
        "push_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


class Worker:
    """A real `celery worker` (prefork, one child) on the deliveries queue, in its own process group."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        celery = Path(sys.executable).parent / "celery"
        command = [
            str(celery),
            "-A",
            "workers.celery_app",
            *worker_argv(1, [DELIVERIES_QUEUE], "--loglevel", "INFO"),
            *("--without-heartbeat", "--without-mingle", "--without-gossip"),
        ]
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            command,
            env=settings.child_environment(os.environ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the main process and its pool child at once, as a power loss would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def await_true(
    condition: Callable[[], bool],
    *,
    timeout: float = 60.0,
    what: str = "condition",
    detail: Callable[[], str] = lambda: "",
) -> None:
    """Poll `condition` until it holds; fail with `what` (and `detail()`) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s {detail()}"
        time.sleep(0.05)
