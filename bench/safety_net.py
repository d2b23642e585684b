"""The safety net's cost and staleness bound: the per-division cycle against the old per-lane cycle, in one run.

1. An idle division with 4 topics over a simulated day: 96 cycles of 15 minutes run back to back in-process (the
   safety net counts cycles, not the clock, so a day of cycles is a day's schedule; the subscriptions stay healthy),
   old mode (DELTA_SYNC_PER_LANE) then new, Exact calls from the sandbox's counter.
2. N divisions x 5 topics (default 1,000): one old cycle, then the new cycle until it is steady (every lane backed off
   to the bound), and one whole period of steady cycles averaged: Exact calls, division tasks, and the worker's CPU
   seconds (the thread running the cycle; the sandbox serves from its own thread and is not counted).
3. A lost webhook: a real worker with beat at DELTA_SYNC_MINUTES=0.05 (3 s) and DELTA_SYNC_MAX_MINUTES=0.2 (12 s),
   so the stated bound is 15 s; once the lanes have backed off, records change with no webhook, and the time until
   each reaches the mirror is measured against the bound.

    python -m bench.safety_net [--divisions 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import select

from bench.common import bench_env, connect, environment, print_table, subscribe
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
from sync.cycle import safety_net
from sync.safety_net import DivisionRun
from sync.tasks import fan_out, fan_out_divisions, sync_division, sync_lane
from workers.cli import worker_argv

IDLE_TOPICS = ("Accounts", "Contacts", "Items", "SalesInvoices")
SCALE_TOPICS = ("Accounts", "Contacts", "Items", "SalesInvoices", "PurchaseOrders")
CYCLES_A_DAY = 96  # at the default DELTA_SYNC_MINUTES of 15
FIRST_DIVISION = 1000


class Bench:
    def __init__(self, settings: Settings, sandbox_url: str) -> None:
        self.settings = settings
        self.sessions = make_session_factory(make_engine(settings.database_url))
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.http = httpx.Client(base_url=f"{sandbox_url}/_sandbox", timeout=300)
        self.connection_id = connect(settings)

    def ctx(self, **update: Any) -> WorkerContext:
        return WorkerContext(self.settings.model_copy(update=update), self.sessions, self.redis)

    def calls(self, **filters: object) -> int:
        return int(self.http.get("/calls", params={k: str(v) for k, v in filters.items()}).json()["total"])

    def subscribe(self, divisions: list[int], topics: tuple[str, ...]) -> None:
        with session_scope(self.sessions) as session:
            pairs = [(division, topic) for division in divisions for topic in topics]
            subscribe(session, self.connection_id, pairs, self.settings.callback_url)

    def old_cycle(self, ctx: WorkerContext) -> int:
        """The per-lane cycle: one walk (sync and sync/Deleted) per lane, as one `delta_sync` task each runs it."""

        def start(lane: Lane, full: bool) -> None:
            sync_lane(ctx, lane, owner="bench-old", full=full)

        return fan_out(ctx, start)

    def new_cycle(self, ctx: WorkerContext) -> int:
        """The safety net's cycle: one run per due division, as one `delta_sync_division` task each runs it."""
        runs: list[DivisionRun] = []
        fan_out_divisions(ctx, runs.append)
        for run in runs:
            sync_division(ctx, run, owner="bench-new")
        return len(runs)

    def measured(self, cycle: Callable[[], int], **filters: object) -> tuple[int, int, float]:
        """(Exact calls, tasks, worker CPU seconds) of one cycle."""
        calls, cpu = self.calls(**filters), time.thread_time()
        tasks = cycle()
        return self.calls(**filters) - calls, tasks, time.thread_time() - cpu


def idle_day(bench: Bench) -> list[list[object]]:
    division = 101
    bench.subscribe([division], IDLE_TOPICS)
    old, new = bench.ctx(delta_sync_per_lane=True), bench.ctx()
    bench.old_cycle(old)  # the seeded records, walked once: the day starts idle
    rows = []
    for label, ctx, cycle in (("old: every lane, every cycle", old, bench.old_cycle), ("new", new, bench.new_cycle)):
        before = bench.calls(division=division)
        for _ in range(CYCLES_A_DAY):
            cycle(ctx)
        day = bench.calls(division=division) - before
        rows.append([label, day, f"{day / CYCLES_A_DAY:.2f}"])
    return rows


def at_scale(bench: Bench, count: int) -> tuple[list[list[object]], int]:
    divisions = list(range(FIRST_DIVISION, FIRST_DIVISION + count))
    started = time.monotonic()
    for division in divisions:
        bench.http.post("/divisions", json={"code": division}).raise_for_status()
    bench.subscribe(divisions, SCALE_TOPICS)
    print(f"seeded {count} divisions in {time.monotonic() - started:.0f} s", file=sys.stderr)
    old, new = bench.ctx(delta_sync_per_lane=True), bench.ctx()
    bench.old_cycle(old)  # walk the seeded records once
    calls, tasks, cpu = bench.measured(lambda: bench.old_cycle(old))
    rows: list[list[object]] = [["old: every lane", calls, tasks, f"{cpu:.1f}", "1.00", "1.00"]]
    base_calls, base_cpu = calls, cpu
    net = safety_net(new)
    period, ramp = 1 << net.top, 0
    lanes = [Lane(bench.connection_id, d, t) for d in divisions for t in SCALE_TOPICS]
    # Until every lane sits at the bound (each quiet walk steps it up once: at most 1 + 2 + ... cycles).
    while min(net.levels(lanes).values(), default=0) < net.top or len(net.levels(lanes)) < len(lanes):
        bench.new_cycle(new)
        ramp += 1
    steady = [bench.measured(lambda: bench.new_cycle(new)) for _ in range(period)]
    mean_calls = sum(s[0] for s in steady) / period
    mean_cpu = sum(s[2] for s in steady) / period
    mean_tasks = sum(s[1] for s in steady) / period
    worst = max(steady, key=lambda s: s[0])
    rows.append(
        [
            f"new, steady (mean of {period} cycles)",
            f"{mean_calls:.0f}",
            f"{mean_tasks:.0f}",
            f"{mean_cpu:.1f}",
            f"{mean_calls / base_calls:.2f}",
            f"{mean_cpu / base_cpu:.2f}",
        ]
    )
    rows.append(
        [
            "new, steady (busiest cycle)",
            worst[0],
            worst[1],
            f"{worst[2]:.1f}",
            f"{worst[0] / base_calls:.2f}",
            f"{worst[2] / base_cpu:.2f}",
        ]
    )
    return rows, ramp


def lost_webhooks(bench: Bench, env_dir: Path, rounds: int) -> tuple[list[float], float]:
    """Seconds from a change (its webhook lost) to the mirror, through a real worker and beat."""
    base, bound = 0.05, 0.2
    settings = bench.settings.model_copy(
        update={"delta_sync_minutes": base, "delta_sync_max_minutes": bound, "log_level": "WARNING"}
    )
    division = 202
    bench.subscribe([division], IDLE_TOPICS)
    stated = (base + bound) * 60
    delays: list[float] = []
    argv = [
        sys.executable,
        *("-m", "celery", "-A", "workers.celery_app"),
        *worker_argv(2, ["exact-events", "exact-deliveries"], "--loglevel", "WARNING"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat", "--beat"),
        *("--schedule", str(env_dir / "beat-schedule")),
    ]
    ctx = bench.ctx()
    net = safety_net(bench.ctx(delta_sync_minutes=base, delta_sync_max_minutes=bound))
    lanes = [Lane(bench.connection_id, division, t) for t in IDLE_TOPICS]
    with Children(env_dir / "logs") as children:
        children.start("worker", argv, environment(settings))
        for _ in range(rounds):
            deadline = time.monotonic() + 300
            while min(net.levels(lanes).values(), default=0) < net.top or len(net.levels(lanes)) < len(lanes):
                children.check()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the lanes never backed off:\n{children.log_tail('worker')}")
                time.sleep(0.5)
            # Spread the changes over a bound, so that they land at every point of the lanes' schedule.
            for topic in ("Accounts", "Contacts"):
                delays.append(_change_and_wait(bench, ctx, division, topic, stated * 3))
                time.sleep(stated / 3)
    return delays, stated


def _change_and_wait(bench: Bench, ctx: WorkerContext, division: int, topic: str, timeout: float) -> float:
    entity = CATALOGUE.require(topic)
    rows = bench.http.get(f"/records/{division}/{entity.path}").json()["records"]
    key, name = str(rows[0][entity.key]).lower(), f"lost-{uuid.uuid4().hex[:8]}"
    field = {"Accounts": "Name", "Contacts": "FirstName"}[topic]
    bench.http.put(f"/records/{division}/{entity.path}/{key}", json={field: name}).raise_for_status()
    started = time.monotonic()
    query = select(MirrorRecord.record).where(
        MirrorRecord.division == division, MirrorRecord.topic == topic, MirrorRecord.key == key
    )
    while time.monotonic() - started < timeout:
        with ctx.sessions() as session:
            record = session.scalar(query)
        if record is not None and record.get(field) == name:
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"{topic} {key}: not in the mirror after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--divisions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    # Cycles run back to back here: the minute and day limits would only make the run wait.
    config = SandboxConfig(day_limit=10**8, minute_limit=10**6)
    with (
        ServerThread(create_sandbox_app(config)) as sandbox,
        bench_env(
            exact_base_url=sandbox.url, sinks="sql", rate_limit_per_day=10**8, rate_limit_per_minute=10**6
        ) as env,
    ):
        bench = Bench(env.settings, sandbox.url)
        day = idle_day(bench)
        print_table(
            "An idle division with 4 topics: Exact calls in a simulated day (96 cycles of 15 minutes)",
            ["cycle", "calls a day", "calls a cycle"],
            day,
        )
        print(f"ratio new/old: {int(str(day[1][1])) / int(str(day[0][1])):.3f}; target: <= 150 calls a day")
        delays, stated = lost_webhooks(bench, env.workdir, args.rounds)
        print_table(
            "A lost webhook: seconds from the change to the mirror (base 3 s, bound 12 s, a real worker and beat)",
            ["stated bound (s)", "changes", "median (s)", "worst (s)", "worst / bound"],
            [
                [
                    f"{stated:.0f}",
                    len(delays),
                    f"{sorted(delays)[len(delays) // 2]:.1f}",
                    f"{max(delays):.1f}",
                    f"{max(delays) / stated:.2f}",
                ]
            ],
        )
        rows, ramp = at_scale(bench, args.divisions)
        print_table(
            f"{args.divisions:,} divisions x 5 topics: one cycle (the new one steady after {ramp} cycles)",
            ["cycle", "Exact calls", "tasks", "worker CPU s", "calls vs old", "CPU vs old"],
            rows,
        )
        print("target: <= 2,000 calls and <= 10 worker CPU-seconds a cycle at 1,000 divisions")


if __name__ == "__main__":
    main()
