"""`exact-pipeline sync`: backfill one division and topic with a progress bar.

Usage:
    exact-pipeline sync --division 101 --topic Accounts          # from the lane's cursor (resumes where it stopped)
    exact-pipeline sync --division 101 --topic Accounts --full   # from the start

The cursor advances after every call the sinks accepted, so an interrupted backfill resumes from its last page.
"""

from __future__ import annotations

import os
import time
import uuid

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connections.queries import NoSingleConnection, the_connection
from exact import CATALOGUE, ExactError, UnsupportedTopic
from runtime.settings import get_settings
from sync.coalesce import Lane
from sync.context import WorkerContext
from sync.delta_sync import Progress as OnPage
from sync.reading import InvalidTopicFields
from sync.tasks import LaneBusy, sync_lane

__all__ = ["run_sync", "sync"]

console = Console(stderr=True)
_TOPIC_NAMES = ", ".join(CATALOGUE.topics())
# A running flush keeps its lane's lock as long as it runs (a rate-limit wait included): wait as long as one may take.
WAIT_SECONDS = 300.0


def run_sync(ctx: WorkerContext, lane: Lane, *, full: bool, on_page: OnPage, wait_seconds: float) -> int:
    """Walk the lane under its lock, waiting up to `wait_seconds` for a running flush to let go."""
    owner = f"cli:{os.getpid()}:{uuid.uuid4()}"
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return sync_lane(ctx, lane, owner, full=full, on_page=on_page)
        except LaneBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def resolve_connection(ctx: WorkerContext, division: int, topic: str, given: int | None) -> int:
    if given is not None:
        return given
    found = ctx.connection_for(division, topic)
    if found is not None:
        return found
    with ctx.sessions() as session:
        try:
            return the_connection(
                session, None, consented_only=True, why=f" and no subscription for {division}/{topic}"
            )
        except NoSingleConnection as exc:
            raise typer.BadParameter(str(exc), param_hint="--connection") from exc


def sync(
    division: int = typer.Option(..., help="Exact division code."),
    topic: str = typer.Option(..., help=f"One of: {_TOPIC_NAMES}."),
    full: bool = typer.Option(False, help="Start from the beginning instead of the lane's cursor."),
    connection: int | None = typer.Option(None, help="Connection id (default: the subscription's)."),
    wait: float = typer.Option(WAIT_SECONDS, help="Seconds to wait for a running flush of this lane."),
) -> None:
    """Backfill one division and topic into every sink: resumable, with a progress bar."""
    try:
        entity = CATALOGUE.require(topic)
    except UnsupportedTopic as exc:
        raise typer.BadParameter(str(exc)) from exc
    settings = get_settings()
    try:
        ctx = WorkerContext.from_settings(settings)
    except InvalidTopicFields as exc:
        console.print(f"[red]settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    lane = Lane(resolve_connection(ctx, division, entity.topic, connection), division, entity.topic)
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"{division}/{entity.topic}", total=None)
        try:
            count = run_sync(ctx, lane, full=full, on_page=lambda n: progress.advance(bar, n), wait_seconds=wait)
        except LaneBusy as exc:
            console.print(f"[red]busy:[/red] {exc}")
            raise typer.Exit(1) from exc
        except ExactError as exc:
            console.print(f"[red]stopped:[/red] {exc.message} (run again to resume from the last page)")
            raise typer.Exit(1) from exc
    console.print(f"{count} changes from {division}/{entity.topic} accepted by {settings.sinks}")
