"""Exact calls per change: bursts handled by a real Celery worker, against one GET per webhook event.

For each scenario the sandbox creates the changes, and the events the receiver would have enqueued for them (the same
Celery messages, pushed the same way) go onto the events queue; a real worker process (prefork, 2 children) then
coalesces, fetches and writes the SQL mirror. Exact calls are the sandbox's own counter, under the default budget of
60 calls a minute per division. The baseline, measured in the same run, fetches each changed record with one GET
(the sandbox's limit is lifted for it, or 10,000 GETs would take 167 minutes).

    python -m bench.efficiency [--sizes 10,100,1000,10000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator

import httpx
import redis
from sqlalchemy import func, select

from bench.common import bench_env, connect, enqueue_events, peak_rss_mb, print_table, start_worker, subscribe
from connections.factory import client_from_settings
from delivery.models import MirrorRecord
from exact import CATALOGUE
from ops.children import Children
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.serving import ServerThread
from runtime.settings import Settings
from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.tasks import sync_lane

SPREAD = [(d, t) for d in (101, 202) for t in ("Accounts", "Contacts", "Items", "SalesInvoices", "PurchaseOrders")]


class Run:
    def __init__(self, settings: Settings, sandbox_url: str, connection_id: int) -> None:
        self.settings, self.sandbox_url, self.connection_id = settings, sandbox_url, connection_id
        self.sessions = make_session_factory(make_engine(settings.database_url))
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.http = httpx.Client(base_url=f"{sandbox_url}/_sandbox", timeout=120)

    def calls(self, **filters: object) -> int:
        return int(self.http.get("/calls", params={k: str(v) for k, v in filters.items()}).json()["total"])

    def prime(self, pairs: list[tuple[int, str]]) -> None:
        """Walk each lane once, so the scenarios measure changes, not the seeded records."""
        ctx = WorkerContext(self.settings, self.sessions, self.redis)
        with session_scope(self.sessions) as session:
            subscribe(session, self.connection_id, pairs, self.settings.callback_url)
        for division, topic in pairs:
            sync_lane(ctx, Lane(self.connection_id, division, topic), owner="bench-prime")

    def mirrored(self, pairs: list[tuple[int, str]]) -> int:
        with self.sessions() as session:
            return sum(
                int(
                    session.scalar(
                        select(func.count())
                        .select_from(MirrorRecord)
                        .where(MirrorRecord.division == d, MirrorRecord.topic == t)
                    )
                    or 0
                )
                for d, t in pairs
            )

    def create(self, pairs: list[tuple[int, str]], size: int) -> Iterator[tuple[int, str, str, list[str]]]:
        """`size` creates in the sandbox spread evenly over `pairs`: (division, topic, path, new ids) per pair."""
        for n, (division, topic) in enumerate(pairs):
            count = size // len(pairs) + (1 if n < size % len(pairs) else 0)
            spec = CATALOGUE.get(topic)
            assert spec is not None
            assert spec.path is not None
            fields = {spec.lines.name: [{"Description": "bench", "Quantity": 1}]} if spec.lines else {}
            body = {"count": count, "fields": fields}
            ids = self.http.post(f"/records/{division}/{spec.path}/bulk", json=body).json()["ids"]
            yield division, topic, spec.path, ids

    def burst(self, pairs: list[tuple[int, str]], size: int, timeout: float = 240.0) -> tuple[int, int, float]:
        """`size` creates spread evenly over `pairs`; returns (Exact calls, 429s, seconds until all mirrored)."""
        before, before_429, expected = self.calls(), self.calls(status=429), self.mirrored(pairs) + size
        started = time.monotonic()
        for division, topic, _path, ids in self.create(pairs, size):
            enqueue_events(self.settings, self.redis, division, topic, ids)
        while self.mirrored(pairs) < expected:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"only {self.mirrored(pairs)} of {expected} mirrored after {timeout}s")
            time.sleep(0.2)
        return self.calls() - before, self.calls(status=429) - before_429, time.monotonic() - started

    def line_burst(self, division: int, documents: int, lines: int, timeout: float = 240.0) -> tuple[int, int, float]:
        """`documents` invoices of `lines` lines each, then one edit of every line, one webhook event per edit;
        returns (Exact calls, 429s, seconds until every edited document is mirrored whole)."""
        entity = CATALOGUE.require("SalesInvoices")
        assert entity.lines is not None
        assert entity.path is not None
        body = {"count": documents, "fields": {entity.lines.name: [{"Quantity": n + 1} for n in range(lines)]}}
        keys = set(self.http.post(f"/records/{division}/{entity.path}/bulk", json=body).json()["ids"])
        enqueue_events(self.settings, self.redis, division, entity.topic, sorted(keys))
        self._await(lambda: self._edited(division, keys, "") == len(keys), timeout)  # created, not yet measured
        rows = self.http.get(f"/records/{division}/{entity.lines.path}").json()["records"]
        mine = [r for r in rows if r[entity.key] in keys]
        before, before_429, started = self.calls(), self.calls(status=429), time.monotonic()
        edits = [{"id": r["ID"], "fields": {"Description": "edited"}} for r in mine]
        self.http.post(f"/records/{division}/{entity.lines.path}/bulk-edit", json={"changes": edits})
        enqueue_events(self.settings, self.redis, division, entity.topic, [r[entity.key] for r in mine])
        self._await(lambda: self._edited(division, keys, "edited") == len(keys), timeout)
        return self.calls() - before, self.calls(status=429) - before_429, time.monotonic() - started

    def _edited(self, division: int, keys: set[str], description: str) -> int:
        """Documents among `keys` mirrored with every line's Description starting with `description`."""
        with self.sessions() as session:
            rows = session.scalars(
                select(MirrorRecord).where(MirrorRecord.division == division, MirrorRecord.topic == "SalesInvoices")
            )
            return sum(
                1
                for r in rows
                if r.key in keys
                and r.record
                and all(str(x.get("Description") or "").startswith(description) for x in r.record["lines"])
            )

    @staticmethod
    def _await(done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"not mirrored after {timeout}s")
            time.sleep(0.2)

    def naive(self, pairs: list[tuple[int, str]], size: int) -> int:
        """The baseline: one GET per changed record (limits lifted), as an integration without coalescing does."""
        self.http.post("/config", json={"minute_limit": 10**9, "day_limit": 10**9})
        client = client_from_settings(
            self.settings.model_copy(update={"rate_limit_per_minute": 10**9, "rate_limit_per_day": 10**9}),
            self.sessions,
            self.connection_id,
        )
        before = self.calls()
        for division, _topic, path, ids in self.create(pairs, size):
            for key in ids:
                client.request("GET", division, f"{path}(guid'{key}')", params={"$select": "ID"})
        calls = self.calls() - before
        self.http.post("/config", json={"minute_limit": 60, "day_limit": 5000})
        self.http.post("/limits/reset")
        return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    config = SandboxConfig(day_limit=10**6)  # the day's 5,000 would end a long run; the minute stays at 60
    with (
        ServerThread(create_sandbox_app(config)) as sandbox,
        bench_env(exact_base_url=sandbox.url, sinks="sql", rate_limit_per_day=10**6) as env,
    ):
        settings = env.settings
        connection_id = connect(settings)
        run = Run(settings, sandbox.url, connection_id)
        one = [(101, "Contacts")]
        run.prime(one + [p for p in SPREAD if p not in one])
        rows = []
        with Children(env.workdir / "logs") as children:
            worker = start_worker(children, settings)
            for label, pairs in (("1 division, 1 topic", one), ("10 lanes (2 divisions x 5 topics)", SPREAD)):
                for size in sizes:
                    if len(pairs) > size:
                        continue
                    calls, limited, seconds = run.burst(pairs, size)
                    rows.append([label, f"{size:,}", calls, f"{calls / size:.4f}", limited, f"{seconds:.1f}"])
            calls, limited, seconds = run.line_burst(101, 100, 10)
            label = "line rows: 1 division, 100 invoices x 10 lines, every line edited"
            rows.append([label, "1,000", calls, f"{calls / 1000:.4f}", limited, f"{seconds:.1f}"])
            worker_rss = peak_rss_mb(worker.pid)
        baseline = [run.naive(one, size) / size for size in sizes if size <= 1000]
        print_table(
            "Exact calls per change: coalesced bursts through a real worker (default budget: 60 a minute)",
            ["scenario", "changes", "Exact calls", "calls per change", "429s", "seconds to mirror"],
            rows,
        )
        print(
            f"\nbaseline, one GET per webhook event (measured for {', '.join(str(s) for s in sizes if s <= 1000)}): "
            f"{', '.join(f'{b:.3f}' for b in baseline)} calls per change"
        )
        print("target: <= 0.005 calls per change on bursts of 1,000 or more, and no 429")
        print(f"worker peak RSS: largest process {worker_rss[0]} MiB, all processes {worker_rss[1]} MiB")


if __name__ == "__main__":
    main()
