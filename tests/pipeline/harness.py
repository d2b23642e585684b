"""The whole pipeline for real: sandbox, receiver, subscriptions, a Celery worker process and a push target."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from commands.models import CommandRecord
from connections.models import Connection, Division
from delivery.history import TraceEvent
from delivery.models import CommandWrite, Delivery, MirrorRecord
from exact import CATALOGUE
from ops.levels import control_path, sandbox_view, view
from receiver.app import create_app
from runtime.contracts import DELIVERIES_QUEUE, EVENTS_QUEUE
from runtime.settings import Settings
from schema.store import SchemaSnapshot
from subscriptions.models import FollowRule, Subscription
from subscriptions.service import SubscriptionService
from sync.cursors import DocumentState, LaneCursor
from tests.conftest import ServerThread
from tests.pipeline.connected import connect_to
from tests.pipeline.push_support import PUSH_SECRET, PushTarget, serve_push_target
from workers.cli import worker_argv


@dataclass
class Pipeline:
    settings: Settings
    sandbox: ServerThread
    push: PushTarget
    sessions: sessionmaker[Session]
    connection_id: int
    service: SubscriptionService
    start_worker: Callable[..., subprocess.Popen[bytes]]
    log_dir: Path  # worker<N>.log of each worker started

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Generous: during a burst the sandbox, receiver and push target share this process with 1,000 deliveries.
        return httpx.request(method, f"{self.sandbox.url}/_sandbox/{path}", timeout=120, **kwargs)

    def sandbox_records(self, division: int, topic: str) -> dict[str, dict[str, Any]]:
        entity = CATALOGUE.require(topic)
        rows = self.control("GET", f"records/{division}/{control_path(entity)}").json()["records"]
        lines = self.control("GET", f"records/{division}/{entity.lines.path}").json()["records"] if entity.lines else []
        return sandbox_view(entity, rows, lines)

    def mirror(self, division: int, topic: str) -> dict[str, dict[str, Any]]:
        entity = CATALOGUE.require(topic)
        with self.sessions() as session:
            rows = session.scalars(
                select(MirrorRecord).where(MirrorRecord.division == division, MirrorRecord.topic == entity.topic)
            )
            return {r.key: view(entity, r.record or {}) for r in rows if not r.deleted}

    def pushed(self, division: int, topic: str) -> dict[str, dict[str, Any]]:
        entity = CATALOGUE.require(topic)
        return {
            k: view(entity, v)
            for (d, t, k), v in self.push.latest().items()
            if d == division and t == entity.topic and v is not None
        }

    def calls(self, **filters: object) -> int:
        return int(self.control("GET", "calls", params={k: str(v) for k, v in filters.items()}).json()["total"])

    def expected(self, division: int, topic: str, only: set[str] | None) -> dict[str, dict[str, Any]]:
        records = self.sandbox_records(division, topic)
        return records if only is None else {k: v for k, v in records.items() if k in only}

    def differences(self, pairs: list[tuple[int, str]], only: dict[tuple[int, str], set[str]], push: bool) -> list[str]:
        diffs = []
        for d, t in pairs:
            want = self.expected(d, t, only.get((d, t)))
            views = [("mirror", self.mirror(d, t))] + ([("push", self.pushed(d, t))] if push else [])
            for name, have in views:
                have = have if (d, t) not in only else {k: v for k, v in have.items() if k in only[(d, t)]}
                if have != want:
                    missing, extra = set(want) - set(have), set(have) - set(want)
                    stale = [k for k in set(want) & set(have) if want[k] != have[k]]
                    diffs.append(f"{name} {d}/{t}: {len(missing)} missing, {len(extra)} extra, {len(stale)} stale")
        return diffs

    def await_level(
        self,
        pairs: list[tuple[int, str]],
        *,
        only: dict[tuple[int, str], set[str]] | None = None,
        push: bool = True,
        timeout: float = 240.0,
    ) -> None:
        """Wait until mirror (and push target) equal the sandbox; `only` limits a pair to some keys."""
        deadline = time.monotonic() + timeout
        while True:
            idle = self.control("GET", "webhooks/idle").json()["idle"]
            diffs = self.differences(pairs, only or {}, push) if idle else ["webhooks pending"]
            if not diffs:
                return
            assert time.monotonic() < deadline, f"not level after {timeout}s: {diffs}"
            time.sleep(0.3)


@pytest.fixture
def target() -> PushTarget:
    """A verifying push target (tests/pipeline/push_support.py) that a test can make fail, slow or down."""
    return PushTarget()


@pytest.fixture
def server(target: PushTarget) -> Iterator[ServerThread]:
    with serve_push_target(target) as server:
        yield server


@pytest.fixture
def pipeline(
    settings: Settings,
    sandbox: ServerThread,
    session_factory: sessionmaker[Session],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    with running_pipeline(settings, sandbox, session_factory, redis_client, tmp_path) as running:
        yield running


@contextmanager
def running_pipeline(
    settings: Settings,
    sandbox: ServerThread,
    session_factory: sessionmaker[Session],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    """The pipeline around `sandbox`: a receiver, a push target, a connection, and workers started on demand."""
    # Each test has a fresh sandbox; the run shares one database, so the worker tables start empty (commands too:
    # beat's sweeper would run another test's leftovers against this sandbox), and so do the connections: a command
    # runs on the newest connection reaching its division, and an earlier test's (another sandbox user's, so not
    # the row `connect_to` updates) holds tokens a dead sandbox issued.
    with session_factory() as session, session.begin():
        tables = (MirrorRecord, Delivery, CommandWrite, LaneCursor, DocumentState, Subscription, FollowRule)
        tables += (CommandRecord, SchemaSnapshot, TraceEvent)
        for table in (*tables, Division, Connection):
            session.execute(delete(table))
    push = PushTarget()
    workers: list[subprocess.Popen[bytes]] = []
    with serve_push_target(push) as push_server:
        settings = settings.model_copy(
            update={
                "exact_base_url": sandbox.url,
                "sinks": "sql,http",
                "push_url": f"{push_server.url}/push",
                "push_secret": SecretStr(PUSH_SECRET),
                "coalesce_window_seconds": 0.5,
                "delivery_max_attempts": 4,
            }
        )
        with ServerThread(create_app(settings)) as receiver:
            settings = settings.model_copy(update={"public_url": receiver.url})
            connection_id = connect_to(settings)
            from connections.factory import client_from_settings

            client = client_from_settings(settings, session_factory, connection_id)
            service = SubscriptionService(settings, session_factory, client, connection_id, redis_client)

            def start_worker(*, beat: bool = False) -> subprocess.Popen[bytes]:
                celery = Path(sys.executable).parent / "celery"
                log = open(tmp_path / f"worker{len(workers)}.log", "wb")
                command = [
                    str(celery),
                    "-A",
                    "workers.celery_app",
                    *worker_argv(2, [EVENTS_QUEUE, DELIVERIES_QUEUE], "--loglevel", "WARNING"),
                    *("--without-heartbeat", "--without-mingle", "--without-gossip"),
                ]
                if beat:
                    command += ["--beat", "--schedule", str(tmp_path / "beat-schedule")]
                # Its own process group, so a test can kill the worker with all its children at once.
                process = subprocess.Popen(
                    command,
                    env=current[0].settings.child_environment(os.environ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                workers.append(process)
                return process

            current = [
                Pipeline(settings, sandbox, push, session_factory, connection_id, service, start_worker, tmp_path)
            ]
            try:
                yield current[0]
            finally:
                for process in workers:
                    if process.poll() is None:
                        os.killpg(process.pid, 9)
                    process.wait(timeout=30)
                for log_file in sorted(tmp_path.glob("worker*.log")):
                    text = log_file.read_text(errors="replace")
                    if "Traceback" in text:
                        sys.stderr.write(f"--- {log_file.name}\n{text[-3000:]}\n")
