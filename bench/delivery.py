"""Delivery throughput of the http sink: pushes a second, SQL statements and Redis commands a push.

Changes go into the outbox of one division and topic (a fifth of the keys with a second version, so per-key order
is exercised), then a real worker (prefork, 2 children) pushes them to a verifying push target (uvicorn with
httptools and keep-alive, in a process of its own). Measured in one run: a bare POST loop to the same target (the
ceiling), the worker with one lane a task (`DELIVERY_BATCH_KEYS=1`: a task, a lock and a breaker gate per key, as
before batching) and with batches. Redis commands are every command the worker and the dispatcher sent (Redis
MONITOR, the clients that touched this run's key prefix; Celery's own included, commands run inside a Lua script
not); SQL statements and commits are counted by SQLAlchemy events while the same batches run in this process.

    python -m bench.delivery [--pushes 4000] [--batch 100]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import redis
from pydantic import SecretStr
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bench.common import ROOT, bench_env, print_table, start_worker
from delivery import outbox
from delivery.changes import ChangeRecord
from delivery.models import Delivery, DeliveryState
from delivery.outbox import PushLane, batches, dispatch_lanes
from delivery.push import DeliveryContext, deliver_lanes
from delivery.sinks.base import Outgoing
from delivery.sinks.http import HttpSink
from ops.children import Children
from runtime.db import make_engine, make_session_factory, utc_now
from runtime.serving import free_port
from runtime.settings import Settings

DIVISION, TOPIC = 303, "Accounts"
SECRET_ENV = "BENCH_PUSH_SECRET"


# -- the push target, in a process of its own
def serve_target(port: int) -> None:
    """The demo's verifying target on `/push`, and what it counted on `/stats`."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from ops.push_target import PushTarget

    target = PushTarget(os.environ[SECRET_ENV])

    async def stats(_: Request) -> JSONResponse:
        counts = ("received", "duplicates", "rejected", "out_of_order")
        return JSONResponse({name: getattr(target, name) for name in counts})

    app = Starlette(routes=[Route("/stats", stats), Mount("/", app=target.app())])
    uvicorn.run(app, host="127.0.0.1", port=port, http="httptools", log_level="warning", access_log=False)


@contextmanager
def target_process(secret: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, SECRET_ENV: secret, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "bench.delivery", "--serve-target", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/stats", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError("the push target did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        child.terminate()
        child.wait(timeout=10)


# -- counting
class _CountingPacker:
    def __init__(self, packer: Any) -> None:
        self._packer = packer

    def pack(self, *args: Any) -> Any:
        _CountingConnection.commands += 1
        return self._packer.pack(*args)


class _CountingConnection(redis.Connection):
    """Counts every command it sends, a pipeline's one by one."""

    commands = 0

    def _construct_command_packer(self, packer: Any) -> Any:
        return _CountingPacker(super()._construct_command_packer(packer))  # type: ignore[no-untyped-call]


@contextmanager
def sql_counted(engine: Engine) -> Iterator[dict[str, int]]:
    counts = {"statements": 0, "commits": 0}

    def statement(*_: object) -> None:
        counts["statements"] += 1

    def commit(*_: object) -> None:
        counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


class Monitor:
    """Redis MONITOR in a thread: afterwards, the commands of the clients that touched `prefix`."""

    _LINE = re.compile(r'^\+\d+\.\d+ \[\d+ ([^\]]+)\] "(.*)$')

    def __init__(self, redis_url: str, prefix: str) -> None:
        url = httpx.URL(redis_url)
        self._sock = socket.create_connection((url.host or "127.0.0.1", url.port or 6379))
        if url.password:
            self._sock.sendall(f"AUTH {url.password}\r\n".encode())
        self._prefix, self._stop = prefix, threading.Event()
        self._lines: list[tuple[str, bool]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> Monitor:
        self._sock.sendall(b"MONITOR\r\n")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(0.3)  # the last lines
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _read(self) -> None:
        self._sock.settimeout(0.2)
        buffer = b""
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            for raw in lines:
                match = self._LINE.match(raw.decode(errors="replace"))
                if match and match.group(1) != "lua":
                    self._lines.append((match.group(1), self._prefix in match.group(2)))

    def commands(self) -> int:
        ours = {client for client, touched in self._lines if touched}
        return sum(1 for client, _ in self._lines if client in ours)


# -- the runs
def seed(settings: Settings, sessions: sessionmaker[Session], keys: int) -> tuple[list[PushLane], int]:
    """`keys` new keys in the outbox, a fifth of them with a second version; their lanes and the pushes due."""
    names = [str(uuid.uuid4()) for _ in range(keys)]
    changes = [ChangeRecord(DIVISION, TOPIC, k, "Update", {"ID": k, "Name": "bench v1"}, 1) for k in names]
    changes += [ChangeRecord(DIVISION, TOPIC, k, "Update", {"ID": k, "Name": "bench v2"}, 2) for k in names[::5]]
    lanes: list[PushLane] = []
    for start in range(0, len(changes), 1000):  # as fetches of 1,000 records would hand them over
        with sessions() as session, session.begin():
            lanes += outbox.accept(session, changes[start : start + 1000], settings).lanes
    return list(dict.fromkeys(lanes)), len(changes)


def delivered(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).where(Delivery.state == DeliveryState.DELIVERED)) or 0)


def await_delivered(sessions: sessionmaker[Session], count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while delivered(sessions) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {delivered(sessions)} of {count} pushes delivered")
        time.sleep(0.05)


def bare_posts(settings: Settings, count: int) -> float:
    """Pushes a second of `HttpSink.push` in a loop: the POST alone, with no outbox, lock or task."""
    sink = HttpSink(settings)
    started = time.monotonic()
    for n in range(count):
        change = ChangeRecord(DIVISION, TOPIC, str(uuid.uuid4()), "Update", {"ID": "bare", "Name": "bench"}, n)
        sink.push(Outgoing(change, utc_now(), 1))
    return count / (time.monotonic() - started)


def run_batch(target_url: str, secret: str, batch: int, keys: int) -> dict[str, float]:
    overrides: dict[str, object] = {
        "sinks": "http",
        "push_url": f"{target_url}/push",
        "push_secret": SecretStr(secret),
        "delivery_batch_keys": batch,
    }
    with bench_env(**overrides) as env, Children(env.workdir / "logs") as children:
        settings = env.settings
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        start_worker(children, settings)
        figures: dict[str, float] = {}

        lanes, pushes = seed(settings, sessions, keys)  # timed, nothing watching
        started = time.monotonic()
        tasks = len(batches(lanes, batch))
        dispatch_lanes(settings, lanes)
        await_delivered(sessions, pushes)
        figures.update(pushes=pushes, tasks=tasks, per_second=pushes / (time.monotonic() - started))

        before = delivered(sessions)
        lanes, counted = seed(settings, sessions, max(200, keys // 4))  # counted under MONITOR
        with Monitor(settings.redis_url, settings.redis_prefix) as monitor:
            dispatch_lanes(settings, lanes)
            await_delivered(sessions, before + counted)
        figures["redis_per_push"] = monitor.commands() / counted

    # The SQL of the same batches, run in this process (the task adds none around them).
    with bench_env(**overrides) as env:
        settings = env.settings
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        _CountingConnection.commands = 0
        pool = redis.ConnectionPool.from_url(settings.redis_url, connection_class=_CountingConnection)
        client = redis.Redis(connection_pool=pool)
        ctx = DeliveryContext.build(settings, sessions, client)
        lanes, counted = seed(settings, sessions, max(200, keys // 4))
        with sql_counted(engine) as sql:
            for group in batches(lanes, batch):
                deliver_lanes(ctx, group, owner=f"bench-{uuid.uuid4().hex}")
        assert delivered(sessions) == counted, "the in-process pass left pushes undelivered"
        figures["sql_per_push"] = sql["statements"] / counted
        figures["commits_per_push"] = sql["commits"] / counted
        figures["own_redis_per_push"] = _CountingConnection.commands / counted
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=4000, help="keys in the timed pass (a fifth get 2 versions)")
    parser.add_argument("--batch", type=int, default=100, help="DELIVERY_BATCH_KEYS of the batched run")
    parser.add_argument("--serve-target", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_target:
        serve_target(args.serve_target)
        return
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with target_process(secret) as url:
        with bench_env(sinks="http", push_url=f"{url}/push", push_secret=SecretStr(secret)) as env:
            bare = bare_posts(env.settings, 2000)
        runs = {size: run_batch(url, secret, size, args.pushes) for size in (1, args.batch)}
        stats = httpx.get(f"{url}/stats").json()
    rows = [["bare POST loop (no outbox, lock or task)", f"{bare:,.0f}", "1.00", "-", "-", "-", "-"]]
    for size, f in runs.items():
        rows.append(
            [
                f"worker, {size} {'lanes' if size > 1 else 'lane'} a task "
                f"({f['tasks']:,.0f} tasks, {f['pushes']:,.0f} pushes)",
                f"{f['per_second']:,.0f}",
                f"{f['per_second'] / bare:.2f}",
                f"{f['sql_per_push']:.2f}",
                f"{f['commits_per_push']:.2f}",
                f"{f['redis_per_push']:.2f}",
                f"{f['own_redis_per_push']:.2f}",
            ]
        )
    print_table(
        "http sink delivery throughput, one division and topic, verifying target, worker with 2 children",
        [
            "path",
            "pushes a second",
            "ratio to bare POSTs",
            "SQL statements a push",
            "commits a push",
            "Redis commands a push (worker + dispatch, MONITOR)",
            "of which delivery's own (locks, breaker)",
        ],
        rows,
    )
    batched = runs[args.batch]
    print(
        f"\ntarget: >= 1,000 pushes a second ({batched['per_second']:,.0f}), <= 1 SQL round trip "
        f"({batched['sql_per_push'] + batched['commits_per_push']:.2f} statements and commits) and <= 3 Redis commands "
        f"({batched['redis_per_push']:.2f}) a push; target saw {json.dumps(stats)}"
    )


if __name__ == "__main__":
    main()
