"""Fairness under a backfill: while `sync --full` walks N Accounts of one division, a command, a webhook change of
another topic (Contacts) and one of the walked topic (Accounts) are sent every 0.7 windows and timed to the SQL
sink, and the sandbox counts every call by the budget class it names, at its arrival. Two runs in one: the budget
classes (the BUDGET_SHARE_* defaults) and the baseline (every share 0: one budget, spent in arrival order).

The window is shrunk and its limit lowered (`--window`, `--limit`) so that the walk, which costs about 2 s of CPU a
page here, is held by the budget rather than by the CPU, as several backfills of a division are at Exact's 60 a
minute; the shares work on the counts, not on the length of the window.

    python -m bench.fairness [--records 50000] [--limit 10] [--window 30] [--probes 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.common import bench_env, connect, environment, print_table, start_worker
from commands.schema import Command
from commands.store import submit
from commands.tasks import change_key, enqueue
from connections.factory import client_from_settings
from delivery.models import MirrorRecord
from ops.children import Children
from runtime.db import make_engine, make_session_factory
from runtime.serving import ServerThread, free_port
from runtime.settings import Settings
from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig
from subscriptions.service import SubscriptionService

WEBHOOK_SECRET = "bench-webhook-secret"
DIVISION = 101
NO_SHARES = {f"budget_share_{c}": 0.0 for c in ("command", "webhook", "delta", "backfill")}


@dataclass
class Run:
    name: str
    command_s: list[float]
    webhook_s: list[float]
    same_topic_s: list[float]
    backfill_calls: int
    backfill_max_window: int
    backfill_share: int
    classes: dict[str, int]
    walk_s: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--limit", type=int, default=10, help="calls per window (Exact: 60)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of the window (Exact: 60)")
    parser.add_argument("--probes", type=int, default=4, help="commands and webhook changes sent during the walk")
    args = parser.parse_args()
    runs = [run("budget classes", {}, args), run("baseline: one class", NO_SHARES, args)]
    print_table(
        f"During `sync --full` of {args.records:,} records: {args.limit} calls per {args.window:g} s window",
        [
            "run",
            "command to sink, max s",
            "median s",
            "webhook change to sink, max s",
            "median s",
            "same topic, max s",
            "backfill calls",
            "backfill max per window",
            "backfill bound",
            "walk s",
            "calls by class",
        ],
        [
            [
                r.name,
                _s(max(r.command_s, default=float("nan"))),
                _s(statistics.median(r.command_s) if r.command_s else float("nan")),
                _s(max(r.webhook_s, default=float("nan"))),
                _s(statistics.median(r.webhook_s) if r.webhook_s else float("nan")),
                _s(max(r.same_topic_s, default=float("nan"))),
                r.backfill_calls,
                r.backfill_max_window,
                r.backfill_share,
                f"{r.walk_s:.0f}",
                ", ".join(f"{k or 'none'} {v}" for k, v in r.classes.items()),
            ]
            for r in runs
        ],
    )
    classes, baseline = runs
    print(
        f"\nworst command latency: {max(classes.command_s, default=0):.2f} s with classes vs "
        f"{max(baseline.command_s, default=0):.2f} s in the baseline "
        f"({max(baseline.command_s, default=0) / max(max(classes.command_s, default=0), 1e-9):.1f}x); worst webhook "
        f"change: {max(classes.webhook_s, default=0):.2f} s vs {max(baseline.webhook_s, default=0):.2f} s. "
        f"The backfill's most in one window: {classes.backfill_max_window} (bound {classes.backfill_share}: the "
        f"limit less the reserves above it) vs {baseline.backfill_max_window} unbounded. A change of the walked "
        f"topic waits for the lane's lock, which the walk holds to its end: "
        f"{max(classes.same_topic_s, default=0):.0f} s."
    )


def _s(value: float) -> str:
    return f"{value:.2f}"


def run(name: str, shares: dict[str, float], args: argparse.Namespace) -> Run:
    """One sandbox, receiver, worker and backfill, with these shares (none given: the defaults)."""
    config = SandboxConfig(webhook_secret=WEBHOOK_SECRET, minute_limit=args.limit, minute_window_seconds=args.window)
    with ServerThread(create_sandbox_app(config)) as sandbox:
        http = httpx.Client(base_url=f"{sandbox.url}/_sandbox", timeout=600)
        seeded = http.post(
            f"/records/{DIVISION}/crm/Accounts/bulk", json={"count": args.records, "fields": {"Name": "bulk"}}
        ).json()["ids"]
        port = free_port()
        overrides: dict[str, object] = {
            "exact_base_url": sandbox.url,
            "sinks": "sql",
            "public_url": f"http://127.0.0.1:{port}",
            "exact_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "coalesce_window_seconds": 0.2,
            "rate_limit_per_minute": args.limit,
            "rate_limit_window_seconds": args.window,
            "rate_limit_max_wait_seconds": 600.0,
            **shares,
        }
        with bench_env(**overrides) as env, Children(env.workdir / "logs") as children:
            settings = env.settings
            children.start("receiver", [sys.executable, "-m", "cli.main", "receiver", "--port", str(port)],
                           environment(settings))  # fmt: skip
            children.wait_http("receiver", f"{settings.public_url}/readyz")
            sessions = make_session_factory(make_engine(settings.database_url))
            connection_id = connect(settings)
            client = client_from_settings(settings, sessions, connection_id)
            SubscriptionService(
                settings, sessions, client, connection_id, redis.Redis.from_url(settings.redis_url)
            ).register([DIVISION], ["Contacts", "Accounts"])
            start_worker(children, settings)
            time.sleep(args.window * 1.1)  # the set-up's calls leave the window
            http.post("/calls/reset")
            started = time.monotonic()
            backfill = children.start(
                "backfill",
                [sys.executable, "-m", "cli.main", "sync", "--division", str(DIVISION), "--topic", "Accounts",
                 "--full"],
                environment(settings),
            )  # fmt: skip
            probes = probe(http, settings, sessions, args, seeded, lambda: backfill.poll() is None)
            backfill.wait(timeout=3600)
            walk_s = time.monotonic() - started
            counts = http.get("/calls", params={"log": "1"}).json()
            children.stop_all()
    at = sorted(float(e["at"]) for e in counts["log"] if e["class"] == "backfill" and e["division"] == DIVISION)
    above = sum(int(getattr(settings, f"budget_share_{c}") * args.limit) for c in ("command", "webhook", "delta"))
    return Run(
        name,
        *probes,
        len(at),
        _max_in_window(at, args.window),
        args.limit - above,
        dict(counts["classes"]),
        walk_s,
    )


def probe(
    http: httpx.Client,
    settings: Settings,
    sessions: sessionmaker[Session],
    args: argparse.Namespace,
    seeded: list[str],
    walking: Callable[[], bool],
) -> tuple[list[float], list[float], list[float]]:
    """While the walk runs: a command, a Contacts change and an Accounts change every 0.7 windows, each timed to its
    mirror row (the Accounts one to the version with its new name, collected after the walk: it holds that lane)."""
    command_s: list[float] = []
    webhook_s: list[float] = []
    same_s: list[float] = []
    same: dict[tuple[str, str], tuple[list[float], str | None, float]] = {}
    time.sleep(args.window * 0.5)  # the walk has spent what it may of the first window
    for n in range(args.probes):
        if not walking():
            break
        sent = time.monotonic()
        key = f"fair-{uuid.uuid4().hex}"
        command = Command(
            key=key, division=DIVISION, entity="Account", action="create", fields={"Code": f"F{n}", "Name": key}
        )
        with sessions() as session:
            submit(session, command)
        enqueue(settings, key)
        contact = http.post(f"/records/{DIVISION}/crm/Contacts", json={"LastName": f"fair {n}"}).json()["record"]["ID"]
        account, renamed = seeded[-1 - n], f"fair {n}"
        http.put(f"/records/{DIVISION}/crm/Accounts/{account}", json={"Name": renamed})
        same[("Accounts", account)] = (same_s, renamed, sent)
        waiting: dict[tuple[str, str], tuple[list[float], str | None, float]] = {
            ("Commands", change_key(key)): (command_s, None, sent),
            ("Contacts", contact): (webhook_s, None, sent),
        }
        deadline = sent + args.window * 10
        while waiting and time.monotonic() < deadline:
            _collect(sessions, waiting)
            time.sleep(0.05)
        time.sleep(max(0.0, sent + args.window * 0.7 - time.monotonic()))
    deadline = time.monotonic() + 3600
    while same and time.monotonic() < deadline:
        _collect(sessions, same)
        time.sleep(0.2)
    return command_s, webhook_s, same_s


def _collect(
    sessions: sessionmaker[Session], waiting: dict[tuple[str, str], tuple[list[float], str | None, float]]
) -> None:
    """Time every awaited mirror row that is there (with the awaited Name, when one is given), and drop it."""
    with sessions() as session:
        for (topic, record_key), (samples, name, sent) in list(waiting.items()):
            record = session.scalar(
                select(MirrorRecord.record).where(
                    MirrorRecord.division == DIVISION, MirrorRecord.topic == topic, MirrorRecord.key == record_key
                )
            )
            if record is not None and (name is None or record.get("Name") == name):
                samples.append(time.monotonic() - sent)
                waiting.pop((topic, record_key))


def _max_in_window(times: list[float], window: float) -> int:
    """The most calls any `window` seconds held."""
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


if __name__ == "__main__":
    main()
