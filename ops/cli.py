"""`exact-pipeline demo` and `exact-pipeline status`.

Usage:
    exact-pipeline demo                         # the whole pipeline against the sandbox, to a summary
    exact-pipeline demo --forever               # keeps changing records until Ctrl-C
    exact-pipeline demo --changes 50 --burst 200 --summary-json out.json
    exact-pipeline status [--json]
    exact-pipeline trace --division 101 --topic Accounts --key <guid> [--json]
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console

from runtime.db import make_engine, make_session_factory
from runtime.redis import sync_client
from runtime.settings import get_settings

__all__ = ["demo", "status", "trace"]

console = Console()


def demo(
    changes: int = typer.Option(300, help="Creates, updates and deletes in the stream, before the burst."),
    burst: int = typer.Option(1000, help="Records created at once in division 101, Contacts (0: none)."),
    rate: float = typer.Option(25.0, help="Changes a second in the stream."),
    forever: bool = typer.Option(False, "--forever", help="Keep going after the summary, until Ctrl-C."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for everything to be delivered."),
    workdir: Path | None = typer.Option(None, help="Where the database and logs go (default: a new temp dir)."),
    summary_json: Path | None = typer.Option(None, "--summary-json", help="Also write the summary here as JSON."),
) -> None:
    """Run the pipeline end to end against the sandbox: no Exact account needed."""
    from ops.demo import DemoOptions, run_demo

    # Installed explicitly: a shell starting us in the background would have us ignore SIGINT.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like Ctrl-C: every child goes too
    options = DemoOptions(changes=changes, burst=burst, rate=rate, forever=forever, timeout=timeout, workdir=workdir)
    summary = run_demo(get_settings(), options, console)
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary.as_dict(), indent=2))
    if summary.level:
        console.print(
            f"[green]every change delivered[/green]: {summary.changes:,} changes, {summary.exact_calls:,} Exact calls "
            f"({summary.calls_per_change:.4f} a change), {summary.rate_limited} 429s, "
            f"{summary.dead_letters} dead letters, in {summary.seconds:.0f}s"
        )
        return
    console.print("[red]not everything was delivered[/red]: " + "; ".join(summary.differences))
    console.print(f"logs: {summary.workdir}/logs")
    raise typer.Exit(1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def status(as_json: bool = typer.Option(False, "--json", help="JSON instead of tables.")) -> None:
    """Connections, divisions, subscriptions, queues, budgets, dead letters and delta-sync lag."""
    from ops.status import collect, render

    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.database_url))
    client = sync_client(settings.redis_url)
    with sessions() as session:
        report = collect(settings, session, client)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        render(report, console)


def trace(
    division: int = typer.Option(..., help="The record's division."),
    topic: str = typer.Option(..., help="Its topic, e.g. Accounts."),
    key: str = typer.Option(..., help="Its key (the record's ID)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """One record's way: webhooks, the reads, the mirror's version, each sink's attempts, the commands that wrote it."""
    from ops.trace import render, trace_record

    sessions = make_session_factory(make_engine(get_settings().database_url))
    with sessions() as session:
        found = trace_record(session, division, topic, key)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2))
    else:
        render(found, console)
