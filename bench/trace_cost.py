"""What the trace history adds to a flush: one page of changes accepted by the sinks in one transaction, with and
without the page's multi-row history INSERT, interleaved in the same run (the baseline is the accept alone).

    python -m bench.trace_cost [--page 1000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from pydantic import SecretStr

from bench.common import bench_env, print_table
from delivery import history
from delivery.changes import ChangeRecord
from delivery.outbox import accept
from exact import CATALOGUE
from runtime.db import make_engine, make_session_factory, session_scope


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    entity = CATALOGUE.require("Accounts")
    with bench_env(
        sinks="sql,http",
        push_url="http://127.0.0.1:9/push",
        push_secret=SecretStr("whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA=="),
    ) as env:
        sessions = make_session_factory(make_engine(env.settings.database_url))
        timings: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for traced in (False, True):
                page = [
                    ChangeRecord(101, "Accounts", str(uuid.uuid4()), "Update", {"ID": "x", "Name": "n"}, 1)
                    for _ in range(args.page)
                ]
                started = time.perf_counter()
                with session_scope(sessions) as session:
                    if traced:
                        history.record_reads(session, entity, page)
                    accept(session, page, env.settings)
                timings[traced].append(time.perf_counter() - started)
        base, traced_ms = (statistics.median(timings[t]) * 1000 for t in (False, True))
        print_table(
            f"A page of {args.page:,} changes accepted (SQLite, sql and http sinks), median of {args.rounds}",
            ["", "ms a page", "vs accept alone"],
            [
                ["accept alone (baseline)", f"{base:.1f}", "1.00"],
                ["accept + trace history", f"{traced_ms:.1f}", f"{traced_ms / base:.2f}"],
            ],
        )


if __name__ == "__main__":
    main()
