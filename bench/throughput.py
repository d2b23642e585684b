"""Sustained throughput of one division under the default budget of 60 Exact calls a minute.

The sandbox takes a steady stream of new records in one division, spread over three topics, and the events the
receiver would enqueue for them go onto the events queue as they are made (the receiver's own rate is
bench/receiver.py's). A real worker (prefork, 2 children) coalesces, fetches and delivers. Nothing is scaled: the
budget is Exact's real 60 calls a minute, which the runs outlast, so the figure shows whether the budget or this
machine is the limit. The `sql` sink alone, then `sql,http` with a verifying push target in this process.

    python -m bench.throughput [--seconds 30] [--rate 1000] [--http-rate 150]
"""

from __future__ import annotations

import argparse
import base64
import secrets
import time
from collections.abc import Callable

import httpx
import redis
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.common import bench_env, connect, enqueue_events, peak_rss_mb, print_table, start_worker
from delivery.models import LIVE_STATES, Delivery, DeliveryState, MirrorRecord
from exact import CATALOGUE
from ops.children import Children
from ops.push_target import PushTarget
from runtime.db import make_engine, make_session_factory, session_scope
from runtime.serving import ServerThread
from runtime.settings import Settings
from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig
from subscriptions.models import Subscription, SubscriptionState
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.tasks import sync_lane

DIVISION = 101
TOPICS = ("Accounts", "Contacts", "SalesInvoices")


def run(settings: Settings, sandbox_url: str, seconds: float, rate: float, done: Callable[[], int]) -> dict[str, float]:
    """Offer `rate` changes a second for `seconds`; wait until `done()` counts them all; return the figures."""
    client = redis.Redis.from_url(settings.redis_url)
    http = httpx.Client(base_url=f"{sandbox_url}/_sandbox", timeout=120)
    calls_before = int(http.get("/calls", params={"division": DIVISION}).json()["total"])
    limited_before = int(http.get("/calls", params={"status": 429}).json()["total"])
    start_count, offered, started = done(), 0, time.monotonic()
    tick = 0.5
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * (elapsed + tick)) - offered
        for n, topic in enumerate(TOPICS):
            count = due // len(TOPICS) + (1 if n < due % len(TOPICS) else 0)
            spec = CATALOGUE.get(topic)
            assert spec is not None
            if not count:
                continue
            # A document needs a line: Exact's line-row sync resource shows none without.
            fields = {spec.lines.name: [{"Description": "bench", "Quantity": 1}]} if spec.lines else {}
            created = http.post(f"/records/{DIVISION}/{spec.path}/bulk", json={"count": count, "fields": fields})
            ids = created.json()["ids"]
            enqueue_events(settings, client, DIVISION, topic, ids)
        offered += due
        time.sleep(max(0.0, started + (offered / rate) - time.monotonic()))
    offering = time.monotonic() - started
    deadline = time.monotonic() + 180
    while done() - start_count < offered and time.monotonic() < deadline:
        time.sleep(0.25)
    total = time.monotonic() - started
    delivered = done() - start_count
    calls = int(http.get("/calls", params={"division": DIVISION}).json()["total"]) - calls_before
    return {
        "offered": offered,
        "offering_s": offering,
        "delivered": delivered,
        "total_s": total,
        "per_minute": delivered / total * 60,
        "calls": calls,
        "calls_per_minute": calls / total * 60,
        "limited": int(http.get("/calls", params={"status": 429}).json()["total"]) - limited_before,
    }


def settle(sessions: sessionmaker[Session], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    query = select(func.count()).where(Delivery.state.in_(LIVE_STATES))
    while time.monotonic() < deadline:
        with sessions() as session:
            if not session.scalar(query):
                return
        time.sleep(0.25)
    with sessions() as session:
        states = dict(session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
    raise RuntimeError(f"the seeded records' pushes did not settle: {states}")


def counter(sessions: sessionmaker[Session], pushes: bool) -> Callable[[], int]:
    """Records in the mirror, or pushes the target acknowledged."""
    query = (
        select(func.count()).where(Delivery.state == DeliveryState.DELIVERED)
        if pushes
        else select(func.count()).select_from(MirrorRecord)
    )

    def count() -> int:
        with sessions() as session:
            return int(session.scalar(query) or 0)

    return count


def run_sinks(
    push: PushTarget, target_url: str, sinks: str, rate: float, seconds: float
) -> tuple[dict[str, float], tuple[float, float]]:
    """One run with `sinks`: its figures and the worker's peak RSS."""
    # A sandbox per run: the second must not start by mirroring the first one's records.
    sandbox = ServerThread(create_sandbox_app(SandboxConfig(day_limit=10**6)))
    overrides = {
        "exact_base_url": sandbox.url,
        "sinks": sinks,
        "rate_limit_per_day": 10**6,
        "push_url": f"{target_url}/push",
        "push_secret": SecretStr(push.secret),
    }
    with sandbox, bench_env(**overrides) as env, Children(env.workdir / "logs") as children:
        settings = env.settings
        sessions = make_session_factory(make_engine(settings.database_url))
        connection_id = connect(settings)
        ctx = WorkerContext(settings, sessions, redis.Redis.from_url(settings.redis_url))
        with session_scope(sessions) as session:
            for topic in TOPICS:
                session.add(
                    Subscription(
                        connection_id=connection_id,
                        division=DIVISION,
                        topic=topic,
                        state=SubscriptionState.ACTIVE,
                        callback_url=settings.callback_url,
                    )
                )
        for topic in TOPICS:  # the seeded records first, so the run counts only its own changes
            sync_lane(ctx, Lane(connection_id, DIVISION, topic), owner="bench-prime")
        worker = start_worker(children, settings)
        settle(sessions)  # the seeded records' pushes go out before the clock starts
        figures = run(settings, sandbox.url, seconds, rate, counter(sessions, "http" in sinks))
        return figures, peak_rss_mb(worker.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="changes a second offered to the sql sink run")
    parser.add_argument("--http-rate", type=float, default=150.0, help="changes a second offered to the http run")
    args = parser.parse_args()
    rows, rss = [], {}
    push = PushTarget("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
    with ServerThread(push.app()) as pt:
        for sinks, rate in (("sql", args.rate), ("sql,http", args.http_rate)):
            figures, rss[sinks] = run_sinks(push, pt.url, sinks, rate, args.seconds)
            rows.append(
                [
                    sinks,
                    f"{rate * 60:,.0f}",
                    f"{figures['offered']:,}",
                    f"{figures['delivered']:,}",
                    f"{figures['total_s']:.0f}",
                    f"{figures['per_minute']:,.0f}",
                    figures["calls"],
                    figures["limited"],
                ]
            )
    print_table(
        f"Sustained throughput, one division, 3 topics, {args.seconds:.0f}s of offered load, real 60-a-minute budget",
        [
            "sinks",
            "offered a minute",
            "offered",
            "delivered",
            "seconds until all delivered",
            "delivered a minute",
            "Exact calls",
            "429s",
        ],
        rows,
    )
    print(
        "\ntarget: >= 30,000 changes a minute with the sql sink; 'delivered' counts the mirror for sql and the "
        "pushes acknowledged by the target for sql,http"
    )
    for sinks, (largest, total) in rss.items():
        print(f"worker peak RSS ({sinks}): largest process {largest} MiB, all processes {total} MiB")


if __name__ == "__main__":
    main()
