"""Receiver throughput and latency: signed webhooks through the real receiver against a bare Starlette endpoint.

Both run under uvicorn with the same options (one process, uvloop and httptools, no access log), on this machine,
in the same run; the receiver verifies the HashCode, validates, deduplicates and enqueues into a real Redis. wrk
(one thread, 32 connections) measures peak throughput in alternating rounds, then latency at 70% of each peak (paced
connections). The receiver serves `POST /webhooks/exact` through its lean path (receiver/fast.py).

    python -m bench.receiver [--seconds 10] [--bodies 150000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import bench_env, environment, peak_rss_mb, print_table, track
from ops.children import Children
from runtime.serving import free_port
from runtime.settings import Settings
from sandbox.signature import signed_body

LUA = Path(__file__).with_name("wrk_post.lua")
CONNECTIONS = 32


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed (Debian: apt-get install wrk)")
    return found


def write_bodies(path: Path, count: int, secret: str, client_id: str) -> None:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000")
    with path.open("wb") as out:
        for _ in range(count):
            key = str(uuid.uuid4())
            content = {
                "Topic": "Accounts",
                "ClientId": client_id,
                "Division": 101,
                "Action": "Update",
                "Key": key,
                "ExactOnlineEndpoint": f"https://start.exactonline.nl/api/v1/101/crm/Accounts(guid'{key}')",
                "EventCreatedOn": created,
            }
            out.write(signed_body(content, secret) + b"\n")


def wrk(url: str, bodies: Path, seconds: int, delay_ms: float = 0.0) -> dict[str, float]:
    env = {"BODIES": str(bodies), "THREADS": "1", "DELAY_MS": f"{delay_ms:.3f}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [ensure_wrk(), "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(LUA), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["rps"] = figures["requests"] / figures["seconds"]
    return dict(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--bodies", type=int, default=150_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating peak runs of each endpoint")
    args = parser.parse_args()
    ensure_wrk()
    with bench_env(webhook_max_body_bytes=64 * 1024) as env:
        settings = env.settings
        track(settings, [(101, "Accounts")])
        bodies = env.workdir / "bodies.txt"
        write_bodies(bodies, args.bodies, settings.secret("exact_webhook_secret"), str(settings.exact_client_id))
        ports = {"receiver": free_port(), "bare": free_port()}
        with Children(env.workdir / "logs") as children:
            receiver = start_servers(children, settings, ports)
            pids = {"bare": children.procs["bare"].pid, "receiver": receiver.pid}
            urls = {name: f"http://127.0.0.1:{port}/webhooks/exact" for name, port in ports.items()}
            for url in urls.values():
                wrk(url, bodies, 2)  # warm up
            # Peaks alternate, bare then receiver, round after round: on a shared machine the load moves between
            # runs, and a ratio of neighbouring runs follows it. The median round is reported.
            rounds: list[dict[str, dict[str, float]]] = []
            for _ in range(args.rounds):
                rounds.append({name: _measured(pids[name], urls[name], bodies, args.seconds) for name in pids})
            ratios = sorted(r["receiver"]["rps"] / r["bare"]["rps"] for r in rounds)
            middle = sorted(rounds, key=lambda r: r["receiver"]["rps"] / r["bare"]["rps"])[len(rounds) // 2]
            rows = []
            for name in ("bare", "receiver"):
                peak = middle[name]
                # Paced: each connection waits between requests so that together they offer 70% of the peak rate.
                pause = CONNECTIONS * 1000 / (0.7 * peak["rps"]) - peak["p50_ms"]
                paced = wrk(urls[name], bodies, args.seconds, delay_ms=max(pause, 0.0))
                rows.append([name, *_figures(peak), int(peak["non2xx"] + peak["socket_errors"]), *_figures(paced)])
            shape = f"{args.seconds}s each, wrk -t1 -c{CONNECTIONS}, median of {args.rounds} rounds"
            print_table(
                f"Receiver vs bare Starlette, {shape}",
                ["endpoint", "peak req/s", "p50 ms", "p99 ms", "errors", "req/s at 70%", "p50 ms", "p99 ms"],
                rows,
            )
            rss = peak_rss_mb(receiver.pid)
            every = ", ".join(f"{r:.2f}" for r in ratios)
            print(f"\nreceiver/bare throughput ratio: {ratios[len(ratios) // 2]:.2f} (target >= 0.50; rounds: {every})")
            print(f"receiver p99 at 70% of its peak: {rows[1][-1]} ms (target < 10)")
            cpu = {name: sorted(r[name]["cpu_us"] for r in rounds)[len(rounds) // 2] for name in pids}
            print(
                f"server CPU per request (median round): bare {cpu['bare']:.0f} µs, receiver {cpu['receiver']:.0f} µs; "
                f"bare/receiver {cpu['bare'] / cpu['receiver']:.2f} (steadier than req/s when the machine is busy)"
            )
            print(
                f"receiver peak RSS: {rss[0]} MiB; bodies: {args.bodies:,} unique (more requests than that are "
                "answered as duplicates)"
            )


def _measured(pid: int, url: str, bodies: Path, seconds: int) -> dict[str, float]:
    """A peak run, with the server's CPU time per request (user and system, from /proc)."""
    before = _cpu_seconds(pid)
    figures = wrk(url, bodies, seconds)
    figures["cpu_us"] = (_cpu_seconds(pid) - before) * 1e6 / max(figures["requests"], 1)
    return figures


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime and stime, in clock ticks


def start_servers(children: Children, settings: Settings, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    """The receiver and the bare endpoint under the same uvicorn options, both ready; returns the receiver."""
    py = sys.executable
    receiver = children.start(
        "receiver",
        [py, "-m", "cli.main", "receiver", "--port", str(ports["receiver"])],
        environment(settings),
    )
    children.start(
        "bare",
        [
            py,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            str(ports["bare"]),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        environment(settings),
    )
    children.wait_http("receiver", f"http://127.0.0.1:{ports['receiver']}/healthz")
    children.wait_http("bare", f"http://127.0.0.1:{ports['bare']}/webhooks/exact")
    return receiver


def _figures(run: dict[str, float]) -> list[str]:
    return [f"{run['rps']:,.0f}", f"{run['p50_ms']:.2f}", f"{run['p99_ms']:.2f}"]


if __name__ == "__main__":
    main()
