"""What the safety of a posting costs in Exact calls: pre-flight checks and natural-key lookups, against the naive way.

Postings go through `exact.Writer` with its `Preflight` against the sandbox over HTTP (calls are the sandbox's own
counter). The baseline, measured in the same run, is the naive post: one POST and the read-back GET, no checks, so
the ratio is what the checks add. For upserts by VAT number the baseline is the only exact alternative that needs no
index: reading every account of the division through `crm/Accounts` (60 a page) and comparing normalised numbers.

    python -m bench.postings [--posts 20] [--accounts 2000]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import bench_env, connect, print_table
from connections.factory import client_from_settings
from exact import (
    CATALOGUE,
    SPECS,
    ExactClient,
    Matcher,
    Preflight,
    Query,
    References,
    Writer,
    datetime_literal,
    normalise,
)
from runtime.db import make_engine, make_session_factory
from runtime.serving import ServerThread
from sandbox.app import create_sandbox_app
from sandbox.config import SandboxConfig


def _lines(n: int) -> list[dict[str, Any]]:
    amount = 100.0 + n
    return [
        {"GLAccount": "7000", "AmountDC": amount, "Date": "2026-03-10", "Description": f"post {n}"},
        {"GLAccount": "8000", "AmountDC": -amount, "Date": "2026-03-10"},
    ]


class Counter:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=f"{url}/_sandbox", timeout=60)

    def calls(self, **filters: object) -> int:
        return int(self.http.get("/calls", params={k: str(v) for k, v in filters.items()}).json()["total"])


def postings(client: ExactClient, counter: Counter, posts: int) -> list[list[object]]:
    references = References(client)
    checked = Writer(client, references, Preflight(client, references))
    naive = Writer(client, References(client))
    spec = SPECS["GeneralJournalEntry"]
    rows: list[list[object]] = []
    for label, writer in (("naive (baseline): POST + read-back", naive), ("with pre-flight checks", checked)):
        before = counter.calls()
        writer.create(101, spec, {"JournalCode": "90"}, _lines(0))
        first = counter.calls() - before
        before = counter.calls()
        for n in range(1, posts + 1):
            writer.create(101, spec, {"JournalCode": "90"}, _lines(n))
        rows.append([label, first, f"{(counter.calls() - before) / posts:.2f}"])
    return rows


def lookups(client: ExactClient, counter: Counter, accounts: int) -> list[list[object]]:
    spec = SPECS["Account"]
    matcher = Matcher(client)
    wanted = "812345678B01"  # account 1002's, seeded as "NL 8123.45.678.B01"
    before = counter.calls()
    assert matcher.find(101, spec, "VATNumber", wanted)
    first = counter.calls() - before
    before = counter.calls()
    for _ in range(10):
        assert matcher.find(101, spec, "VATNumber", wanted)
    idle = (counter.calls() - before) / 10
    before = counter.calls()
    path = CATALOGUE.references["account"].path
    query = Query(
        filter=f"Modified ge {datetime_literal(datetime(2000, 1, 1, tzinfo=UTC))}", select=["ID", "VATNumber"]
    )
    rows = client.iter_records(101, path, query)
    assert [r for r in rows if normalise("VATNumber", r["VATNumber"]) == normalise("VATNumber", wanted)]
    scan = counter.calls() - before
    return [
        [f"scan every account (baseline; {accounts + 32:,} accounts, 60 a page)", scan, scan, "1.00"],
        ["index over the sync resource", first, f"{idle:.2f}", f"{idle / scan:.3f}"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=2000)
    args = parser.parse_args()
    config = SandboxConfig(minute_limit=10**6, day_limit=10**6)
    with ServerThread(create_sandbox_app(config)) as sandbox, bench_env(exact_base_url=sandbox.url) as env:
        settings = env.settings.model_copy(update={"rate_limit_per_minute": 10**6, "rate_limit_per_day": 10**6})
        connection_id = connect(settings)
        client = client_from_settings(settings, make_session_factory(make_engine(settings.database_url)), connection_id)
        counter = Counter(sandbox.url)
        rows = postings(client, counter, args.posts)
        print_table(
            f"Exact calls per journal entry (GeneralJournalEntry, 2 lines, {args.posts} posts after the first)",
            ["writer", "calls, first post", "calls per later post"],
            rows,
        )
        base, checked = float(str(rows[0][2])), float(str(rows[1][2]))
        print(f"\nchecks add {checked - base:.2f} calls a post once warm ({checked / base:.2f}x the naive post)")
        bulk = counter.http.post("/records/101/crm/Accounts/bulk", json={"count": args.accounts})
        bulk.raise_for_status()
        print_table(
            "Exact calls to find an account by VAT number written otherwise",
            ["way", "calls, first lookup", "calls per later lookup", "ratio to the scan"],
            lookups(client, counter, args.accounts),
        )


if __name__ == "__main__":
    main()
