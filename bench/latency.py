"""End-to-end latency at low load: from the change in the sandbox (which POSTs its webhook at once) to the HTTP
sink's receipt, through the real receiver (uvicorn), a real worker and a verifying push target.

One change a second, in one division and topic, with the coalescing window at its default (2 s) and at 0.5 s, to
show how much of the latency is the window.

    python -m bench.latency [--changes 40]
"""

from __future__ import annotations

import argparse
import base64
import secrets
import statistics
import sys
import time

import httpx
import redis
from pydantic import SecretStr

from bench.common import bench_env, connect, environment, print_table, start_worker
from connections.factory import client_from_settings
from ops.children import Children
from ops.push_target import PushTarget
from runtime.db import make_engine, make_session_factory
from runtime.serving import ServerThread, free_port
from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig
from subscriptions.service import SubscriptionService

WEBHOOK_SECRET = "bench-webhook-secret"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=40)
    args = parser.parse_args()
    push = PushTarget("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
    rows, means = [], {}
    sandbox_app = create_sandbox_app(SandboxConfig(webhook_secret=WEBHOOK_SECRET))
    with ServerThread(sandbox_app) as sandbox, ServerThread(push.app()) as target:
        for window in (2.0, 0.5):
            samples = run_window(sandbox.url, target.url, push, window, args.changes)
            p50, p99 = percentile(samples, 50), percentile(samples, 99)
            rows.append(
                [
                    f"{window:g} s",
                    len(samples),
                    f"{p50 * 1000:,.0f}",
                    f"{p99 * 1000:,.0f}",
                    f"{statistics.mean(samples) * 1000:,.0f}",
                ]
            )
            means[window] = statistics.mean(samples)
    print_table(
        "End-to-end latency, sandbox change to HTTP sink receipt, one change a second",
        ["coalescing window", "changes", "p50 ms", "p99 ms", "mean ms"],
        rows,
    )
    # A change waits for the flush its lane's first event scheduled: between 0 and the whole window.
    rest = (means[0.5] - 0.5) * 1000
    print(
        f"\nthe window's share: 2 s -> 0.5 s moves the mean by {(means[2.0] - means[0.5]) * 1000:,.0f} ms. At 0.5 s "
        f"each change waits out a whole window alone, so the rest, {rest:,.0f} ms, is the webhook, the queue, "
        "the fetch and the push."
    )


def run_window(sandbox_url: str, target_url: str, push: PushTarget, window: float, changes: int) -> list[float]:
    """One run at one coalescing window: a receiver and a worker of its own, one subscription, `changes` samples."""
    port = free_port()
    overrides = {
        "exact_base_url": sandbox_url,
        "sinks": "sql,http",
        "push_url": f"{target_url}/push",
        "push_secret": SecretStr(push.secret),
        "public_url": f"http://127.0.0.1:{port}",
        "exact_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "coalesce_window_seconds": window,
    }
    with bench_env(**overrides) as env, Children(env.workdir / "logs") as children:
        settings = env.settings
        children.start(
            "receiver",
            [sys.executable, "-m", "cli.main", "receiver", "--port", str(port)],
            environment(settings),
        )
        try:
            children.wait_http("receiver", f"{settings.public_url}/readyz")
            sessions = make_session_factory(make_engine(settings.database_url))
            connection_id = connect(settings)
            client = client_from_settings(settings, sessions, connection_id)
            service = SubscriptionService(
                settings, sessions, client, connection_id, redis.Redis.from_url(settings.redis_url)
            )
            service.register([101], ["Contacts"])
            start_worker(children, settings)
            return measure(sandbox_url, push, changes)
        finally:
            children.stop_all()
            # The next run registers again; this one's subscription must not keep posting to a dead port.
            httpx.post(f"{sandbox_url}/_sandbox/webhooks/reset")
            for sub in httpx.get(f"{sandbox_url}/_sandbox/webhooks/subscriptions").json()["subscriptions"]:
                httpx.delete(f"{sandbox_url}/_sandbox/webhooks/subscriptions/{sub['ID']}")


def measure(sandbox_url: str, push: PushTarget, changes: int) -> list[float]:
    http = httpx.Client(base_url=f"{sandbox_url}/_sandbox", timeout=30)
    sent: dict[str, float] = {}
    for n in range(changes):
        started = time.monotonic()
        key = http.post("/records/101/crm/Contacts", json={"LastName": f"latency {n}"}).json()["record"]["ID"]
        sent[key] = started
        time.sleep(max(0.0, started + 1.0 - time.monotonic()))
    deadline = time.monotonic() + 60
    while any((101, "Contacts", k) not in push.first_seen for k in sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [
        push.first_seen[(101, "Contacts", k)] - t for k, t in sent.items() if (101, "Contacts", k) in push.first_seen
    ]


if __name__ == "__main__":
    main()
