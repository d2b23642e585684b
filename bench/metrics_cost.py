"""The cost of counting an Exact call (the httpx hook, multiprocess mode) against one loopback GET through httpx.

.venv/bin/python -m bench.metrics_cost [--calls 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from bench.common import print_table
from runtime.metrics import count_exact_call, enable_multiprocess


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # or each answer waits out a delayed ACK between its head and its body

    def do_GET(self) -> None:
        body = b'{"d": {"results": []}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


def _per_call_us(client: httpx.Client, url: str, calls: int) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    for _ in range(calls):
        response = client.get(url)
    return (time.perf_counter() - started) / calls * 1e6, response


def _hook_us(response: httpx.Response, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        count_exact_call(response)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        enable_multiprocess(Path(directory))  # as a worker's pool process counts: into its sample files
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        key = "guid'00000000-0000-0000-0000-000000000001'"
        url = f"http://127.0.0.1:{server.server_port}/api/v1/101/crm/Accounts({key})"
        with httpx.Client() as client:
            _, response = _per_call_us(client, url, 100)  # warm the connection up
            rounds = []
            for _ in range(args.rounds):  # alternate, so a load that moves between runs moves both
                call, response = _per_call_us(client, url, args.calls)
                rounds.append((call, _hook_us(response, args.calls)))
        server.shutdown()
    call, hook = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
    print_table(
        f"Counting Exact calls: {args.calls} loopback GETs and hook runs x {args.rounds} rounds (median)",
        ["what", "µs per call", "ratio"],
        [
            ["one loopback GET through httpx (baseline; Exact itself answers in 100+ ms)", f"{call:.0f}", "1.00"],
            ["count_exact_call on its answer (multiprocess mode)", f"{hook:.1f}", f"{hook / call:.3f}"],
        ],
    )


if __name__ == "__main__":
    main()
