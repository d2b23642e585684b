"""What the benchmark scripts share: a throwaway environment (database, Redis prefix, secrets), processes, tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.orm import Session

from connections.consent import finish_connect
from connections.factory import oauth_from_settings
from connections.models import Connection
from ops.children import Children
from receiver.handoff import build_message
from runtime.contracts import DELIVERIES_QUEUE, EVENTS_QUEUE
from runtime.crypto import TokenCipher
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.migrate import upgrade
from runtime.redis import clear_prefix, sync_client
from runtime.settings import Settings
from subscriptions.models import Subscription, SubscriptionState
from workers.celery_app import make_celery
from workers.cli import worker_argv

__all__ = [
    "BenchEnv",
    "bench_env",
    "connect",
    "enqueue_events",
    "environment",
    "peak_rss_mb",
    "print_table",
    "start_worker",
    "track",
]

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchEnv:
    settings: Settings
    workdir: Path


@contextmanager
def bench_env(**overrides: object) -> Iterator[BenchEnv]:
    """A migrated SQLite database in a temp dir and a Redis prefix of its own, both removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="exact-pipeline-bench-"))
    base = Settings(
        database_url=f"sqlite:///{workdir / 'bench.db'}",
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        redis_prefix=f"exact-pipeline-bench-{uuid.uuid4().hex[:8]}:",
        exact_client_id="0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        exact_client_secret=SecretStr("sandbox-client-secret"),
        exact_redirect_uri="http://127.0.0.1:9/callback",
        exact_webhook_secret=SecretStr("bench-webhook-secret"),
        token_encryption_key=SecretStr(Fernet.generate_key().decode()),
        log_level="WARNING",
    )
    settings = base.model_copy(update=overrides)
    upgrade(settings.database_url)
    try:
        yield BenchEnv(settings, workdir)
    finally:
        clear_prefix(sync_client(settings.redis_url), settings.redis_prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def track(settings: Settings, pairs: Sequence[tuple[int, str]]) -> int:
    """A stored connection (dummy tokens) with these subscriptions, so the receiver accepts their webhooks."""
    cipher = TokenCipher(settings.secret("token_encryption_key"))
    sessions = make_session_factory(make_engine(settings.database_url))
    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        connection = Connection(
            base_url=settings.exact_base_url,
            client_id=str(settings.exact_client_id),
            user_id=str(uuid.uuid4()),
            access_token_enc=cipher.encrypt("a"),
            refresh_token_enc=cipher.encrypt("r"),
            token_issued_at=now,
            access_expires_at=now,
        )
        session.add(connection)
        session.flush()
        subscribe(session, connection.id, pairs, settings.callback_url)
        return connection.id


def subscribe(session: Session, connection_id: int, pairs: Iterable[tuple[int, str]], callback_url: str) -> None:
    """An active subscription of the connection per (division, topic)."""
    for division, topic in pairs:
        session.add(
            Subscription(
                connection_id=connection_id,
                division=division,
                topic=topic,
                state=SubscriptionState.ACTIVE,
                callback_url=callback_url,
            )
        )


def environment(settings: Settings) -> dict[str, str]:
    return {**settings.child_environment(os.environ), "PYTHONPATH": str(ROOT)}


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """Peak resident memory (VmHWM) in MiB: the largest single process of the tree at `pid`, and the tree's sum."""
    peaks = []
    for p in [pid, *_descendants(pid)]:
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        peaks += [int(line.split()[1]) for line in lines if line.startswith("VmHWM:")]
    return round(max(peaks, default=0) / 1024, 1), round(sum(peaks) / 1024, 1)


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [d for child in children for d in (int(child), *_descendants(int(child)))]


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain Markdown table, so BENCHMARKS.md can take it as printed."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    sys.stdout.flush()


def connect(settings: Settings) -> int:
    """A connection to the sandbox through its OAuth flow (it approves at once), stored as `connect` does."""
    oauth = oauth_from_settings(settings)
    url, _state = oauth.authorize_url()
    location = httpx.URL(httpx.get(url, follow_redirects=False).headers["location"])
    connection_id, _user, _divisions = finish_connect(settings, oauth.exchange_code(location.params["code"]))
    return connection_id


def enqueue_events(settings: Settings, client: redis.Redis, division: int, topic: str, keys: Sequence[str]) -> None:
    """The Celery messages the receiver would have enqueued for webhooks about these keys, pushed the same way."""
    # Exact's `.fff`, whole milliseconds: truncated to the second, an edit made in the second its record was first
    # fetched would look older than that fetch and be dropped as already seen.
    ms = time.time_ns() // 1_000_000
    created = f"{datetime.fromtimestamp(ms // 1000, UTC):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}"
    pipe = client.pipeline(transaction=False)
    for key in keys:
        event = {
            "event_id": uuid.uuid4().hex,
            "division": division,
            "topic": topic,
            "key": key,
            "action": "Update",
            "event_created_on": created,
            "client_id": settings.exact_client_id,
            "received_at": time.time(),
        }
        pipe.lpush(settings.redis_prefix + EVENTS_QUEUE, build_message(event))
    pipe.execute()


def start_worker(children: Children, settings: Settings, concurrency: int = 2) -> subprocess.Popen[bytes]:
    """A real Celery worker (prefork) on both queues, returned once it answers a ping: it is consuming."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        *worker_argv(concurrency, [EVENTS_QUEUE, DELIVERIES_QUEUE], "--loglevel", "WARNING"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    worker = children.start("worker", argv, environment(settings))
    control = make_celery(settings).control
    deadline = time.monotonic() + 60
    while not control.ping(timeout=0.5):
        children.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker never answered a ping:\n{children.log_tail('worker')}")
    return worker
